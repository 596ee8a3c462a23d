// Service VIPs, as libnetwork balances them: per network one load-balancer sandbox
// (`cnmd-lb-<network id>`, a named netns) joined to the network by its own endpoint, which also
// holds every VIP of the network as a /32, so a container's packets to a VIP reach it directly.
// There a @cnmd/lb LoadBalancer programs the data plane (IPVS with iptables marks where the
// kernel has it, else nftables: lb-ipvs.ts) and SNATs so replies come back through it.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { conntrackTool, type DataPlane, LoadBalancer } from '@cnmd/lb';
import type { NetworkController } from './controller.js';
import { ignoreMissing } from './controller.js';
import type { LbBackend, LbHooks } from './hooks.js';
import { HeldDataPlane, type LbDataplaneMode, lbDataplane } from './lb-ipvs.js';
import type { Snat } from './lb-marks.js';
import { withNetns } from './netns/netns.js';
import type { NetworkRecord, ServiceRecord } from './records.js';
import { NETNS_DIR, sandboxKey } from './sandbox-path.js';

const exec = promisify(execFile);

interface Sandbox {
  name: string;
  path: string;
  lb: LoadBalancer;
  dataplane: DataPlane['name'];
}

export interface LbWiringOptions {
  /** The data plane of a sandbox (by its netns name); chosen by `mode` when absent. */
  dataplane?: (netns: string) => DataPlane;
  /** auto (IPVS where the kernel offers it, else nftables), ipvs or nftables; auto by default. */
  mode?: LbDataplaneMode;
  /** Told the data plane chosen, once per sandbox (a line without its newline). */
  log?: (line: string) => void;
  /** How long a task that left drains before it goes, ms. */
  drainMs?: number;
}

export class LbWiring implements LbHooks {
  #c: NetworkController | undefined;
  readonly #o: LbWiringOptions;
  readonly #sandboxes = new Map<string, Sandbox>();
  #holding: [HeldDataPlane, Sandbox][] | undefined;

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

  /** The data plane of each network's load-balancer sandbox, by network name. */
  dataplanes(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [id, sb] of this.#sandboxes) out[this.#c?.networks.get(id)?.spec.name ?? id] = sb.dataplane;
    return out;
  }

  /** Until release(), sandboxes take their services without applying them (the restart's reconcile). */
  hold(): void {
    this.#holding ??= [];
  }

  /** Applies each held sandbox's whole state once, as a difference from what the kernel kept. */
  async release(): Promise<void> {
    const held = this.#holding ?? [];
    this.#holding = undefined;
    for (const [dp, sb] of held) {
      dp.release();
      await sb.lb.sync();
    }
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
    const chosen = this.#o.dataplane?.(name) ?? (await lbDataplane(this.#o.mode ?? 'auto', name, path, snat(c, net)));
    const dataplane = this.#holding ? new HeldDataPlane(chosen) : chosen;
    if (dataplane.name === 'ipvs') {
      // libnetwork's LB sandbox settings: the nat table sees IPVS's connections (for the SNAT),
      // and a packet of a connection whose backend is gone ends it, so the client retries.
      withNetns(path, () => {
        writeFileSync('/proc/sys/net/ipv4/vs/conntrack', '1');
        writeFileSync('/proc/sys/net/ipv4/vs/expire_nodest_conn', '1');
      });
    }
    this.#o.log?.(`network ${net.spec.name}: load balancing with ${dataplane.name} in ${name}`);
    const lb = new LoadBalancer({
      dataplane,
      conntrack: conntrackTool({ netns: name }),
      ...(this.#o.drainMs !== undefined ? { drainMs: this.#o.drainMs } : {}),
    });
    const sb = { name, path, lb, dataplane: dataplane.name };
    this.#sandboxes.set(net.id, sb);
    if (dataplane instanceof HeldDataPlane) this.#holding?.push([dataplane, sb]);
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

/** IPVS's replies come back through the sandbox: SNAT to its endpoint's address on each subnet. */
function snat(c: NetworkController, net: NetworkRecord): Snat[] {
  const ep = c.endpoints.all().find((e) => e.lb && e.network === net.id);
  const out: Snat[] = [];
  if (ep?.ip) out.push({ subnet: net.subnet, source: ep.ip });
  if (ep?.ip6 && net.subnet6) out.push({ subnet: net.subnet6, source: ep.ip6 });
  return out;
}

function lbName(net: NetworkRecord): string {
  return `cnmd-lb-${net.id.slice(0, 10)}`;
}
