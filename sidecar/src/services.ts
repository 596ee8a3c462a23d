// Services on a network, as libnetwork's service records: a name that answers a VIP balanced
// over its tasks (vip mode, through the load balancer) or the tasks' own addresses (dnsrr).
// A task is an endpoint attached with `service` (and a weight).
import { randomBytes } from 'node:crypto';
import type { NetworkController } from './controller.js';
import { SidecarError } from './errors.js';
import type { LbHooks } from './hooks.js';
import type { ServiceInfo, ServiceSpec } from './model.js';
import type { EndpointRecord, NetworkRecord, ServiceRecord } from './records.js';
import type { Records } from './state.js';

export class Services {
  readonly records: Records<ServiceRecord>;
  readonly #c: NetworkController;
  readonly #lb: LbHooks | undefined;

  constructor(c: NetworkController, records: Records<ServiceRecord>, lb: LbHooks | undefined) {
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

  async create(spec: ServiceSpec): Promise<ServiceInfo> {
    const net = this.#c.network(spec.network);
    if (this.records.all().some((s) => s.spec.name === spec.name && s.network === net.id)) {
      throw new SidecarError('SIDECAR_SERVICE_EXISTS', `service ${spec.name} exists on ${spec.network} already`);
    }
    const rec: ServiceRecord = { id: randomBytes(32).toString('hex'), spec, network: net.id };
    if (spec.mode === 'vip') {
      if (!this.#lb) throw new SidecarError('SIDECAR_LB_UNAVAILABLE', 'vip services need the load balancer');
      rec.vip = (await this.#c.ipam.requestAddress(net.pool4, spec.vip ? { address: spec.vip } : {})).address;
      try {
        rec.mark = await this.#c.ipam.requestId('mark');
      } catch (err) {
        await this.#c.ipam.releaseAddress(net.pool4, rec.vip);
        throw err;
      }
    }
    try {
      await this.records.put(rec);
      await this.refresh(rec);
    } catch (err) {
      await this.#destroy(rec).catch(() => {});
      throw err;
    }
    return this.info(rec);
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
    await this.#destroy(rec);
  }

  async #destroy(rec: ServiceRecord): Promise<void> {
    const net = this.#c.networks.get(rec.network);
    if (net) {
      this.#c.dns.service(net, rec, undefined);
      if (rec.vip) await this.#lb?.remove(net, rec);
      if (rec.vip) await this.#c.ipam.releaseAddress(net.pool4, rec.vip).catch(() => false);
    }
    if (rec.mark !== undefined) await this.#c.ipam.releaseId('mark', rec.mark).catch(() => false);
    await this.records.delete(rec.id);
  }

  /** The service's tasks: ready endpoints attached to it, on its network. */
  tasks(rec: ServiceRecord): EndpointRecord[] {
    return this.#c.endpoints
      .all()
      .filter((e) => e.service === rec.spec.name && e.network === rec.network && e.state === 'ready' && !e.mode);
  }

  /** Brings DNS and the load balancer in line with the service's tasks now. */
  async refresh(rec: ServiceRecord, net: NetworkRecord | undefined = this.#c.networks.get(rec.network)): Promise<void> {
    if (!net) return;
    const tasks = this.tasks(rec);
    this.#c.dns.service(net, rec, tasks);
    if (rec.vip && this.#lb) {
      await this.#lb.sync(
        net,
        rec,
        tasks.filter((t) => t.ip).map((t) => ({ address: t.ip!, weight: t.weight ?? 1 })),
      );
    }
  }

  /** Refreshes the services an endpoint is (or was) a task of. */
  async touched(ep: EndpointRecord): Promise<void> {
    if (!ep.service) return;
    for (const rec of this.records.all()) {
      if (rec.spec.name === ep.service && rec.network === ep.network) await this.refresh(rec);
    }
  }

  info(rec: ServiceRecord): ServiceInfo {
    const info: ServiceInfo = {
      ...rec.spec,
      network: this.#c.networks.get(rec.network)?.spec.name ?? rec.network,
      id: rec.id,
      backends: this.tasks(rec).map((t) => ({
        ...(t.name ? { name: t.name } : {}),
        address: t.ip ?? '',
        weight: t.weight ?? 1,
      })),
    };
    if (rec.vip) info.vip = rec.vip;
    if (rec.mark !== undefined) info.mark = rec.mark;
    return info;
  }
}
