// Services on a network, as libnetwork's service records: a name that answers a VIP balanced
// over its tasks (vip mode, through the load balancer) or the tasks' own addresses (dnsrr).
// A task is an endpoint attached with `service` (and a weight).
import { randomBytes } from 'node:crypto';
import { SidecarError } from '../errors.js';
import type { NetworkContext } from './context.js';
import type { LbHooks } from './hooks.js';
import { needCluster } from './networks.js';
import type { EndpointRecord, NetworkRecord, PublishTarget, ServiceRecord, ServiceTask } from './records.js';
import type { ServiceInfo, ServiceSpec } from './spec.js';
import type { Records } from './store.js';

export class Services {
  readonly records: Records<ServiceRecord>;
  readonly #c: NetworkContext;
  readonly #lb: LbHooks | undefined;

  constructor(c: NetworkContext, records: Records<ServiceRecord>, lb: LbHooks | undefined) {
    this.#c = c;
    this.records = records;
    this.#lb = lb;
  }

  find(name: string, network?: string): ServiceRecord {
    const netId = network === undefined ? undefined : this.#c.network(network).id;
    const all = this.records.all().filter((s) => s.spec.name === name && (netId === undefined || s.network === netId));
    if (all.length === 0) throw new SidecarError('SIDECAR_SERVICE_NOT_FOUND', `no service ${name}`);
    if (all.length > 1) {
      throw new SidecarError('SIDECAR_INVALID_ARGUMENT', `service ${name} is on several networks: name the network`);
    }
    return all[0]!;
  }

  /** The service a new task of `net` names: on that network, or a clear error. */
  findForTask(name: string, net: NetworkRecord): ServiceRecord {
    const rec = this.records.all().find((s) => s.spec.name === name && s.network === net.id);
    if (rec) return rec;
    const other = this.records.all().find((s) => s.spec.name === name);
    if (!other) throw new SidecarError('SIDECAR_SERVICE_NOT_FOUND', `no service ${name}`);
    const where = this.#c.networks.get(other.network)?.spec.name ?? other.network;
    throw new SidecarError(
      'SIDECAR_SERVICE_WRONG_NETWORK',
      `service ${name} is on network ${where}, not ${net.spec.name}: a task attaches to its service's network`,
    );
  }

  async create(spec: ServiceSpec): Promise<ServiceInfo> {
    const net = this.#c.network(spec.network);
    if (this.records.all().some((s) => s.spec.name === spec.name && s.network === net.id)) {
      throw new SidecarError('SIDECAR_SERVICE_EXISTS', `service ${spec.name} exists on ${spec.network} already`);
    }
    if (spec.vip6 && !net.pool6) {
      throw new SidecarError(
        'SIDECAR_INVALID_ARGUMENT',
        `network ${spec.network} has no IPv6 subnet for VIP ${spec.vip6}`,
      );
    }
    // Before anything is taken: a host port in use refuses the service and changes nothing.
    await this.#c.firewall.checkPorts(spec.publish ?? []);
    const rec: ServiceRecord = { id: randomBytes(32).toString('hex'), spec, network: net.id };
    // A service of a global network is the cluster's: its VIP from this host's blocks, its mark
    // unique in the cluster, its record put for every host (where a second of its name fails).
    const global = net.spec.scope === 'global';
    const cluster = global ? needCluster(this.#c, 'a service of a global network') : undefined;
    let shared = false;
    try {
      if (spec.mode === 'vip') {
        if (!this.#lb) throw new SidecarError('SIDECAR_LB_UNAVAILABLE', 'vip services need the load balancer');
        if (!this.#c.driverOf(net).capability.lbSandbox) {
          throw new SidecarError(
            'SIDECAR_LB_UNAVAILABLE',
            `${net.spec.driver} networks balance no VIP: use mode dnsrr`,
          );
        }
        rec.vip = (await this.#c.requestAddress(net, spec.vip ? { address: spec.vip } : {})).address;
        rec.mark = global ? await cluster!.requestMark() : await this.#c.ipam.requestId('mark');
        if (net.pool6) {
          rec.vip6 = (await this.#c.ipam.requestAddress(net.pool6, spec.vip6 ? { address: spec.vip6 } : {})).address;
          rec.mark6 = await this.#c.ipam.requestId('mark');
        }
      }
      if (cluster) {
        await cluster.createService(net, rec);
        shared = true;
      }
      await this.records.put(rec);
      await this.refresh(rec);
      for (const p of spec.publish ?? []) await this.#c.firewall.publish(net, this.#published(rec), p);
    } catch (err) {
      if (shared) await cluster!.removeService(net, rec).catch(this.#c.logged(`undoing service ${spec.name}`));
      await this.#destroy(rec).catch(this.#c.logged(`undoing service ${spec.name}`));
      throw err;
    }
    return this.info(rec);
  }

  /** What a service's published ports lead to: its VIPs. */
  #published(rec: ServiceRecord): PublishTarget {
    return { network: rec.network, publish: rec.spec.publish ?? [], ip: rec.vip, ip6: rec.vip6 };
  }

  /** Every service's published ports, for the firewall's reconcile. */
  publishTargets(): PublishTarget[] {
    return this.records.all().map((r) => this.#published(r));
  }

  async remove(name: string, network?: string): Promise<void> {
    const rec = this.find(name, network);
    const tasks = this.tasks(rec);
    if (tasks.length > 0) {
      throw new SidecarError(
        'SIDECAR_SERVICE_IN_USE',
        `service ${name} has ${tasks.length} task(s): detach them first`,
      );
    }
    const net = this.#c.networks.get(rec.network);
    if (net?.spec.scope === 'global') await needCluster(this.#c, 'a global service').removeService(net, rec);
    await this.#destroy(rec);
  }

  /** The cluster has a service of a global network: this host balances and answers it too. */
  async adopt(rec: ServiceRecord): Promise<void> {
    if (this.records.get(rec.id)) return;
    await this.records.put(rec);
    await this.refresh(rec);
  }

  /** The cluster removed it: this host stops answering it; its VIP goes back where it is held. */
  async drop(id: string): Promise<void> {
    const rec = this.records.get(id);
    if (rec) await this.#destroy(rec, { mark: false });
  }

  async #destroy(rec: ServiceRecord, release = { mark: true }): Promise<void> {
    const net = this.#c.networks.get(rec.network);
    if (net) {
      for (const p of rec.spec.publish ?? []) await this.#c.firewall.unpublish(net, this.#published(rec), p);
      this.#c.dns.service(net, rec, undefined);
      if (rec.vip || rec.spec.health) await this.#lb?.remove(net, rec);
    }
    // The record goes before its VIP and mark: a daemon killed in between leaves an address no
    // record holds (the restart returns it to the pool) and a mark held by nothing, never a
    // service that a restart brings back with a VIP and a mark IPAM would hand out again.
    await this.records.delete(rec.id);
    if (net) {
      const what = this.#c.logged(`releasing the VIP of service ${rec.spec.name}`);
      // A global service's VIP is held by the host that made it: elsewhere this returns nothing.
      if (rec.vip) await this.#c.releaseAddress(net, rec.vip).catch(what);
      if (rec.vip6 && net.pool6) await this.#c.ipam.releaseAddress(net.pool6, rec.vip6).catch(what);
    }
    for (const m of release.mark ? [rec.mark, rec.mark6] : []) {
      if (m === undefined) continue;
      const done = net?.spec.scope === 'global' ? this.#c.cluster?.releaseMark(m) : this.#c.ipam.releaseId('mark', m);
      await done?.catch(this.#c.logged(`releasing mark ${m}`));
    }
  }

  /** The service's tasks: ready endpoints attached to it, on its network, here and (for a global
   * network) on the other live hosts. */
  tasks(rec: ServiceRecord): ServiceTask[] {
    const here: ServiceTask[] = this.#c.endpoints
      .all()
      .filter((e) => e.service === rec.spec.name && e.network === rec.network && e.state === 'ready' && !e.mode);
    const net = this.#c.networks.get(rec.network);
    if (net?.spec.scope !== 'global' || !this.#c.cluster) return here;
    return [...here, ...this.#c.cluster.remoteEndpoints(net).filter((e) => e.service === rec.spec.name)];
  }

  /** Brings DNS and the load balancer in line with the service's tasks now. */
  async refresh(rec: ServiceRecord, net: NetworkRecord | undefined = this.#c.networks.get(rec.network)): Promise<void> {
    if (!net) return;
    const tasks = this.tasks(rec);
    if ((rec.vip || rec.spec.health) && this.#lb) {
      const weight = (t: ServiceTask) => t.weight ?? 1;
      await this.#lb.sync(
        net,
        rec,
        tasks.flatMap((t) =>
          [t.ip, t.ip6].filter((a): a is string => !!a).map((address) => ({ address, weight: weight(t) })),
        ),
      );
    }
    this.dnsRefresh(rec, net);
  }

  /** DNS answers the service's healthy tasks (after a health check changed its mind too). */
  dnsRefresh(rec: ServiceRecord, net: NetworkRecord | undefined = this.#c.networks.get(rec.network)): void {
    if (!net) return;
    const out = this.#unhealthy(rec, net);
    this.#c.dns.service(
      net,
      rec,
      this.tasks(rec).map((t) => (this.#healthy(t, out) ? t : { ...t, weight: 0 })),
    );
  }

  #unhealthy(rec: ServiceRecord, net: NetworkRecord): Set<string> {
    return rec.spec.health && this.#lb ? this.#lb.unhealthy(net, rec) : new Set();
  }

  #healthy(t: ServiceTask, out: Set<string>): boolean {
    return !(t.ip && out.has(t.ip)) && !(t.ip6 && out.has(t.ip6));
  }

  /** Refreshes the services an endpoint is (or was) a task of. */
  async touched(ep: Pick<EndpointRecord, 'service' | 'network'>): Promise<void> {
    if (!ep.service) return;
    for (const rec of this.records.all()) {
      if (rec.spec.name === ep.service && rec.network === ep.network) await this.refresh(rec);
    }
  }

  info(rec: ServiceRecord): ServiceInfo {
    const net = this.#c.networks.get(rec.network);
    const out = net ? this.#unhealthy(rec, net) : new Set<string>();
    const info: ServiceInfo = {
      ...rec.spec,
      network: net?.spec.name ?? rec.network,
      id: rec.id,
      backends: this.tasks(rec).map((t) => ({
        ...(t.name ? { name: t.name } : {}),
        address: t.ip ?? '',
        ...(t.ip6 ? { address6: t.ip6 } : {}),
        weight: t.weight ?? 1,
        ...(rec.spec.health ? { health: this.#healthy(t, out) ? ('healthy' as const) : ('unhealthy' as const) } : {}),
      })),
    };
    if (rec.vip) info.vip = rec.vip;
    if (rec.vip6) info.vip6 = rec.vip6;
    if (rec.mark !== undefined) info.mark = rec.mark;
    return info;
  }
}
