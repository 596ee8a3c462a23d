// Stale UDP flows: conntrack keeps NATing a UDP "connection" to a backend that is gone for as
// long as the client keeps sending (the entry's timeout restarts with every packet), so a
// removed task keeps receiving, or the client talks to nobody: moby/moby#36878, which
// libnetwork leaves open. The load balancer deletes those entries once a backend is removed.
import { LbError } from './errors.js';
import { type Exec, execIn } from './exec.js';
import { familyOf } from './ip.js';

export interface Conntrack {
  /** Deletes the UDP flows to `vip` that were NATed to `backend`; resolves with whether there were any. */
  deleteUdp(vip: string, backend: string): Promise<boolean>;
}

export interface ConntrackToolOptions {
  /** The LB sandbox (a /run/netns name or a path), where the NAT happened. */
  netns?: string;
  exec?: Exec;
}

/** conntrack(8) from conntrack-tools: `-D -p udp --orig-dst VIP --reply-src BACKEND`. */
export function conntrackTool(options: ConntrackToolOptions = {}): Conntrack {
  const exec = options.exec ?? execIn(options.netns);
  return {
    async deleteUdp(vip, backend) {
      const family = familyOf(vip) === 6 ? 'ipv6' : 'ipv4';
      const args = ['-D', '-f', family, '-p', 'udp', '--orig-dst', vip, '--reply-src', backend];
      try {
        await exec('conntrack', args);
      } catch (err) {
        // conntrack exits 1 when nothing matched: "0 flow entries have been deleted".
        const m = /(\d+) flow entries have been deleted/.exec((err as Error).message);
        if (m) return Number(m[1]) > 0;
        throw new LbError('LB_CONNTRACK', `conntrack: ${(err as Error).message}`, { cause: err });
      }
      return true; // exit 0: at least one was deleted
    },
  };
}
