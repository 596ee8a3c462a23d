// Service VIPs, as libnetwork balances them: per network one load-balancer sandbox
// (`cnmd-lb-<network id>`, a named netns; see lbName) joined to the network by its own endpoint, which also
// holds every VIP of the network as a /32, so a container's packets to a VIP reach it directly.
// There a @cnmd/lb LoadBalancer programs the data plane (IPVS with iptables marks where the
// kernel has it, else nftables: dataplane.ts) and SNATs so replies come back through it.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { type Conntrack, conntrackTool, type DataPlane, type HealthCheckSpec, LoadBalancer } from '@cnmd/lb';
import { describeError } from '../errors.js';
import { ignoreMissing } from '../kernel/ignore-missing.js';
import type { NetworkController } from '../network/controller.js';
import type { LbBackend, LbHooks } from '../network/hooks.js';
import type { NetworkRecord, ServiceRecord } from '../network/records.js';
import type { HealthSpec } from '../network/spec.js';
import { withNetns } from '../sandbox/netns.js';
import { NETNS_DIR, sandboxKey } from '../sandbox/path.js';
import { HeldDataPlane, type LbDataplaneMode, lbDataplane } from './dataplane.js';
import type { Snat } from './marks.js';
import { NetnsProber } from './prober.js';

const exec = promisify(execFile);

interface Sandbox {
  name: string;
  path: string;
  lb: LoadBalancer;
  dataplane: DataPlane['name'];
  prober: NetnsProber;
  conntrack: Conntrack;
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
    if (!svc.vip && !svc.spec.health) return;
    const sb = await this.#ensure(net);
    for (const [lbName, vip, mark, family] of lbServices(svc)) {
      const mine = backends.filter((b) => family === undefined || b.address.includes(':') === (family === 6));
      if (vip) await this.#vip(sb, vip, true);
      const had = sb.lb.service(lbName);
      if (had) {
        await sb.lb.setBackends(lbName, mine, { drain: vip !== undefined });
        // A task that left is drained, but its endpoint is gone: its UDP flows are deleted now
        // rather than after the drain, so a client moves on with its next datagram (moby/moby#36878).
        if (vip && (had.ports.length === 0 || had.ports.some((p) => p.proto === 'udp'))) {
          const keep = new Set(mine.map((b) => b.address));
          for (const b of had.backends) if (!keep.has(b.address)) await sb.conntrack.deleteUdp(vip, b.address);
        }
        continue;
      }
      await sb.lb.addService({
        name: lbName,
        network: { name: net.spec.name, subnets: [net.subnet, net.subnet6].filter((s): s is string => !!s) },
        ...(vip ? { vip } : { endpointMode: 'dnsrr' as const }),
        ports:
          svc.spec.ports.length > 0
            ? svc.spec.ports.map(({ proto, port, targetPort }) => ({
                proto,
                port,
                ...(targetPort ? { targetPort } : {}),
              }))
            : 'all',
        scheduler: svc.spec.scheduler,
        ...(mark !== undefined ? { mark } : {}),
        ...(svc.spec.health ? { health: lbHealth(svc.spec.health) } : {}),
        backends: mine,
      });
    }
  }

  unhealthy(net: NetworkRecord, svc: ServiceRecord): Set<string> {
    const sb = this.#sandboxes.get(net.id);
    return new Set(sb ? lbServices(svc).flatMap(([name]) => sb.lb.unhealthy(name)) : []);
  }

  async remove(net: NetworkRecord, svc: ServiceRecord): Promise<void> {
    const sb = this.#sandboxes.get(net.id);
    if (!sb) return;
    for (const [lbName, vip] of lbServices(svc)) {
      if (sb.lb.service(lbName)) await sb.lb.removeService(lbName);
      if (vip) await this.#vip(sb, vip, false);
    }
  }

  /** A health check changed its mind: the service's DNS answers follow. */
  #healthChanged(net: NetworkRecord, lbName: string): void {
    const c = this.#c!;
    const rec = c.services.records
      .all()
      .find((r) => r.network === net.id && lbServices(r).some(([name]) => name === lbName));
    if (rec) c.services.dnsRefresh(rec);
  }

  /** The network goes: its load-balancer sandbox and its endpoint go too. */
  async removeNetwork(net: NetworkRecord): Promise<void> {
    const c = this.#c!;
    const sb = this.#sandboxes.get(net.id);
    this.#sandboxes.delete(net.id);
    await sb?.lb.close();
    await sb?.prober.close();
    for (const ep of c.endpoints.all().filter((e) => e.lb && e.network === net.id)) await c.destroyEndpoint(ep);
    await exec('ip', ['netns', 'delete', lbName(net, c.cluster?.hostId)]).catch(() => {});
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
    for (const sb of this.#sandboxes.values()) {
      await sb.lb.close();
      await sb.prober.close();
    }
    this.#sandboxes.clear();
  }

  async #ensure(net: NetworkRecord): Promise<Sandbox> {
    const have = this.#sandboxes.get(net.id);
    if (have) return have;
    const c = this.#c!;
    const name = lbName(net, c.cluster?.hostId);
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
    // Health probes run in the sandbox: it reaches the tasks, the daemon's namespace may not.
    const prober = new NetnsProber(path);
    const conntrack = conntrackTool({ netns: name });
    const lb = new LoadBalancer({
      dataplane,
      conntrack,
      probe: prober.probe,
      onHealth: (service) => this.#healthChanged(net, service),
      onError: (op, err) => c.log(`network ${net.spec.name}: load balancer ${op}: ${describeError(err)}`),
      ...(this.#o.drainMs !== undefined ? { drainMs: this.#o.drainMs } : {}),
    });
    const sb = { name, path, lb, dataplane: dataplane.name, prober, conntrack };
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

/** A service's LoadBalancer services: its IPv4 VIP under its own name, its IPv6 VIP under
 * `<name>.v6` (one VIP each in @cnmd/lb), or for dnsrr with a health check one without VIP. */
function lbServices(
  svc: ServiceRecord,
): [name: string, vip: string | undefined, mark: number | undefined, family: 4 | 6 | undefined][] {
  if (!svc.vip) return [[svc.spec.name, undefined, undefined, undefined]];
  const out: ReturnType<typeof lbServices> = [[svc.spec.name, svc.vip, svc.mark, 4]];
  if (svc.vip6) out.push([`${svc.spec.name}.v6`, svc.vip6, svc.mark6, 6]);
  return out;
}

function lbHealth(h: HealthSpec): HealthCheckSpec {
  return {
    type: h.type,
    port: h.port,
    ...(h.path ? { path: h.path } : {}),
    intervalMs: h.intervalMs,
    timeoutMs: h.timeoutMs,
    healthyThreshold: h.rise,
    unhealthyThreshold: h.fall,
  };
}

/**
 * The network's load-balancer sandbox: `cnmd-lb-<id>`, and for a global network, whose id every
 * host shares, `cnmd-lb-<id>-<host>`, so that hosts sharing one /run/netns (simulated hosts, or
 * several daemons on one machine) each have their own.
 */
function lbName(net: NetworkRecord, host: string | undefined): string {
  const base = `cnmd-lb-${net.id.slice(0, 10)}`;
  return net.spec.scope === 'global' && host ? `${base}-${host}` : base;
}
