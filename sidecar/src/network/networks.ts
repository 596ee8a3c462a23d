// Networks made and removed on this host, and their addresses. A local network is this host's
// alone; a global one is the cluster's: its id, subnet and gateway come from the cluster
// (ClusterHooks), every host makes it (adopt, when the cluster says it exists), and its
// addresses come from blocks of its subnet this host holds. The controller runs these in turn.
import { randomBytes } from 'node:crypto';
import type { AddressRequest, Allocation, PoolRequest } from '@cnmd/ipam';
import { SidecarError } from '../errors.js';
import type { NetworkContext } from './context.js';
import type { ClusterHooks } from './hooks.js';
import type { NetworkRecord } from './records.js';
import type { NetworkSpec } from './spec.js';

/** The cluster, for what needs it; SIDECAR_CLUSTER_UNAVAILABLE without --cluster. */
export function needCluster(c: NetworkContext, what: string): ClusterHooks {
  if (!c.cluster) throw new SidecarError('SIDECAR_CLUSTER_UNAVAILABLE', `${what} needs a cluster (--cluster)`);
  return c.cluster;
}

/** What the cluster says a global network is. */
export interface GlobalNetwork {
  id: string;
  spec: NetworkSpec;
  subnet: string;
  gateway?: string;
  created: string;
}

export class Networks {
  readonly #c: NetworkContext;

  constructor(c: NetworkContext) {
    this.#c = c;
  }

  async create(spec: NetworkSpec, opts: { origin?: 'docker' } = {}): Promise<NetworkRecord> {
    const c = this.#c;
    if (c.networks.all().some((n) => n.spec.name === spec.name)) {
      throw new SidecarError('SIDECAR_NETWORK_EXISTS', `network ${spec.name} exists already`);
    }
    const driver = c.drivers.check(spec);
    // A driver between hosts (overlay) makes global networks only.
    if (driver.capability.scope === 'global') spec = { ...spec, scope: 'global' };
    if (spec.scope === 'global') {
      if (spec.ipv6) throw new SidecarError('SIDECAR_INVALID_ARGUMENT', 'a global network is IPv4 only, for now');
      const cluster = needCluster(c, `a global network (${spec.driver})`);
      const { noGateway = false, vni = false, encryption = false } = driver.capability;
      await driver.device('0'.repeat(64), spec); // what the driver needs here, before the cluster is asked
      const encrypted = encryption && spec.options.encrypted !== undefined;
      const g = await cluster.createNetwork(spec, { gateway: !noGateway, vni, encrypted });
      return this.#make(g.id, g.spec, this.#globalPool(g), { created: g.created });
    }
    const avoid = (await (await c.host()).routes(4)).filter((r) => r.dst !== 'default').map((r) => r.dst);
    const pool = {
      ...(spec.subnet ? { subnet: spec.subnet } : { avoid }),
      ...(spec.ipRange ? { ipRange: spec.ipRange } : {}),
      ...(spec.gateway ? { gateway: spec.gateway } : {}),
    };
    return this.#make(randomBytes(32).toString('hex'), spec, pool, opts);
  }

  /** The cluster has a global network: this host makes it too, unless it has it already. */
  async adopt(g: GlobalNetwork): Promise<NetworkRecord | undefined> {
    const c = this.#c;
    if (c.networks.get(g.id)) return undefined;
    const clash = c.networks.all().find((n) => n.spec.name === g.spec.name);
    if (clash) throw new SidecarError('SIDECAR_NETWORK_EXISTS', `a local network ${g.spec.name} has the name`);
    return this.#make(g.id, g.spec, this.#globalPool(g), { created: g.created });
  }

  /** The cluster removed a global network: this host does too, once nothing of its own is on it. */
  async drop(id: string): Promise<void> {
    const c = this.#c;
    const rec = c.networks.get(id);
    if (!rec) return;
    const left = c.endpoints.all().filter((e) => e.network === id && !e.lb);
    if (left.length > 0) {
      throw new SidecarError('SIDECAR_NETWORK_IN_USE', `${left.length} endpoint(s) here keep network ${rec.spec.name}`);
    }
    await this.destroy(rec);
  }

  async remove(rec: NetworkRecord): Promise<void> {
    const c = this.#c;
    const name = rec.spec.name;
    const svcs = c.serviceRecords.all().filter((s) => s.network === rec.id);
    if (svcs.length > 0) {
      throw new SidecarError(
        'SIDECAR_NETWORK_IN_USE',
        `network ${name} has ${svcs.length} service(s): remove them first`,
      );
    }
    const eps = c.endpoints.all().filter((e) => e.network === rec.id && !e.lb);
    if (eps.length > 0) {
      throw new SidecarError(
        'SIDECAR_NETWORK_IN_USE',
        `network ${name} has ${eps.length} endpoint(s): detach them first`,
      );
    }
    if (rec.spec.scope === 'global') await needCluster(c, 'a global network').removeNetwork(rec);
    await this.destroy(rec);
  }

  /** Makes the kernel side of a network (its driver's part); again after a restart. */
  async build(rec: NetworkRecord): Promise<void> {
    await this.#c.driverOf(rec).buildNetwork(rec);
  }

  /** Undoes whatever part of a network exists; safe on a half-made one. */
  async destroy(rec: NetworkRecord): Promise<void> {
    const c = this.#c;
    await c.driverOf(rec).deleteNetwork(rec);
    for (const pool of [rec.pool4, rec.pool6]) {
      if (!pool || !c.ipam.pool(pool)) continue;
      for (const a of c.ipam.addresses(pool)) await c.ipam.releaseAddress(pool, a.address);
      await c.ipam.releasePool(pool);
    }
    await c.networks.delete(rec.id);
  }

  /** An IPv4 address of the network: from its pool, or for a global one from this host's blocks. */
  requestAddress(net: NetworkRecord, req: AddressRequest): Promise<Allocation> {
    if (net.spec.scope === 'global') return needCluster(this.#c, 'a global network').requestAddress(net, req);
    return this.#c.ipam.requestAddress(net.pool4, req);
  }

  async releaseAddress(net: NetworkRecord, address: string): Promise<void> {
    if (net.spec.scope === 'global') await needCluster(this.#c, 'a global network').releaseAddress(net, address);
    else await this.#c.ipam.releaseAddress(net.pool4, address);
  }

  /** The pool of a global network on this host: the cluster's subnet, in IPAM's global space. */
  #globalPool(g: GlobalNetwork): PoolRequest {
    const macs = this.#c.drivers.get(g.spec.driver).capability.macs ?? 'random';
    return { space: 'global', subnet: g.subnet, gateway: g.gateway ?? false, macs };
  }

  /** Makes a network on this host: its device, pools, record and kernel side; undone on failure. */
  async #make(
    id: string,
    spec: NetworkSpec,
    pool: PoolRequest,
    opts: { origin?: 'docker'; created?: string },
  ): Promise<NetworkRecord> {
    const c = this.#c;
    const device = await c.drivers.get(spec.driver).device(id, spec);
    const pool4 = await c.ipam.requestPool(pool);
    const rec: NetworkRecord = {
      id,
      spec,
      device,
      pool4: pool4.id,
      subnet: pool4.subnet,
      created: opts.created ?? new Date().toISOString(),
      state: 'creating',
      ...(opts.origin ? { origin: opts.origin } : {}),
    };
    if (pool4.gateway) rec.gateway = pool4.gateway;
    try {
      if (spec.ipv6) {
        const pool6 = await c.ipam.requestPool({
          ...(spec.subnet6 ? { subnet: spec.subnet6 } : { family: 6 }),
          ...(spec.gateway6 ? { gateway: spec.gateway6 } : {}),
        });
        rec.pool6 = pool6.id;
        rec.subnet6 = pool6.subnet;
        if (pool6.gateway) rec.gateway6 = pool6.gateway;
      }
      await c.networks.put(rec);
      await this.build(rec);
      rec.state = 'ready';
      await c.networks.put(rec);
    } catch (err) {
      await this.destroy(rec).catch(c.logged(`undoing network ${spec.name}`));
      throw err;
    }
    return rec;
  }
}
