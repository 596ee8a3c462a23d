// Service VIPs, as libnetwork balances them: per network one load-balancer sandbox
// (`cnmd-lb-<network id>`, a named netns) joined to the network by its own endpoint, which also
// holds every VIP of the network as a /32, so a container's packets to a VIP reach it directly.
// There a @cnmd/lb LoadBalancer programs the data plane (nftables here; DESIGN.md) and SNATs so
// replies come back through it.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { conntrackTool, type DataPlane, LoadBalancer, NftablesDataPlane } from '@cnmd/lb';
import type { NetworkController } from './controller.js';
import { ignoreMissing } from './controller.js';
import type { LbBackend, LbHooks } from './hooks.js';
import { withNetns } from './netns/netns.js';
import type { NetworkRecord, ServiceRecord } from './records.js';
import { NETNS_DIR, sandboxKey } from './sandbox-path.js';

const exec = promisify(execFile);

interface Sandbox {
  name: string;
  path: string;
  lb: LoadBalancer;
}

export interface LbWiringOptions {
  /** The data plane of a sandbox (by its netns name); nftables by default. */
  dataplane?: (netns: string) => DataPlane;
  /** How long a task that left drains before it goes, ms. */
  drainMs?: number;
}

export class LbWiring implements LbHooks {
  #c: NetworkController | undefined;
  readonly #o: LbWiringOptions;
  readonly #sandboxes = new Map<string, Sandbox>();

  constructor(o: LbWiringOptions = {}) {
    this.#o = o;
  }

  /** The controller it works for (they refer to each other). */
  bind(c: NetworkController): void {
    this.#c = c;
  }

  async sync(net: NetworkRecord, svc: ServiceRecord, backends: LbBackend[]): Promise<void> {
    if (!svc.vip) return;
    const sb = await this.#ensure(net);
    await this.#vip(sb, svc.vip, true);
    if (!sb.lb.service(svc.spec.name)) {
      await sb.lb.addService({
        name: svc.spec.name,
        network: { name: net.spec.name, subnets: [net.subnet, net.subnet6].filter((s): s is string => !!s) },
        vip: svc.vip,
        ports:
          svc.spec.ports.length > 0
            ? svc.spec.ports.map(({ proto, port, targetPort }) => ({
                proto,
                port,
                ...(targetPort ? { targetPort } : {}),
              }))
            : 'all',
        scheduler: svc.spec.scheduler,
        ...(svc.mark !== undefined ? { mark: svc.mark } : {}),
        backends,
      });
    } else {
      await sb.lb.setBackends(svc.spec.name, backends, { drain: true });
    }
  }

  async remove(net: NetworkRecord, svc: ServiceRecord): Promise<void> {
    const sb = this.#sandboxes.get(net.id);
    if (!sb || !svc.vip) return;
    if (sb.lb.service(svc.spec.name)) await sb.lb.removeService(svc.spec.name);
    await this.#vip(sb, svc.vip, false);
  }

  /** The network goes: its load-balancer sandbox and its endpoint go too. */
  async removeNetwork(net: NetworkRecord): Promise<void> {
    const c = this.#c!;
    const sb = this.#sandboxes.get(net.id);
    this.#sandboxes.delete(net.id);
    await sb?.lb.close();
    for (const ep of c.endpoints.all().filter((e) => e.lb && e.network === net.id)) await c.destroyEndpoint(ep);
    await exec('ip', ['netns', 'delete', lbName(net)]).catch(() => {});
  }

  async close(): Promise<void> {
    // The kernel keeps balancing while the daemon restarts.
    for (const sb of this.#sandboxes.values()) await sb.lb.close();
    this.#sandboxes.clear();
  }

  async #ensure(net: NetworkRecord): Promise<Sandbox> {
    const have = this.#sandboxes.get(net.id);
    if (have) return have;
    const c = this.#c!;
    const name = lbName(net);
    const path = `${NETNS_DIR}/${name}`;
    if (!sandboxKey(path)) await exec('ip', ['netns', 'add', name]);
    if (!c.endpoints.all().some((e) => e.lb && e.network === net.id)) {
      await c.attachNow({ sandbox: name, network: net.spec.name, aliases: [], publish: [] }, { lb: true });
    }
    withNetns(path, () => {
      writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
      writeFileSync('/proc/sys/net/ipv6/conf/all/forwarding', '1');
    });
    const dataplane = this.#o.dataplane?.(name) ?? new NftablesDataPlane({ netns: name });
    const lb = new LoadBalancer({
      dataplane,
      conntrack: conntrackTool({ netns: name }),
      ...(this.#o.drainMs !== undefined ? { drainMs: this.#o.drainMs } : {}),
    });
    const sb = { name, path, lb };
    this.#sandboxes.set(net.id, sb);
    return sb;
  }

  /** Adds or removes a VIP as a /32 (/128) on the sandbox's endpoint. */
  async #vip(sb: Sandbox, vip: string, on: boolean): Promise<void> {
    const links = await this.#c!.kernel.open(sb.path);
    try {
      const cidr = `${vip}/${vip.includes(':') ? 128 : 32}`;
      const has = (await links.addresses('eth0')).some((a) => a.cidr === cidr);
      if (on && !has) await links.addAddress('eth0', cidr);
      if (!on && has) await ignoreMissing(links.deleteAddress('eth0', cidr));
    } finally {
      await links.close();
    }
  }
}

function lbName(net: NetworkRecord): string {
  return `cnmd-lb-${net.id.slice(0, 10)}`;
}
