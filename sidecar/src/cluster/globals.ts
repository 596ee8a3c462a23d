// The records of the cluster that any host may make or remove for all: global networks (their
// subnet claimed first) and their services. Each is a compare-and-set create, so a second of a
// name is refused, and a removal is refused while another host has endpoints on what it removes.
import { randomBytes } from 'node:crypto';
import { parseCidr } from '@cnmd/netutil';
import { SidecarError } from '../errors.js';
import { parseDuration } from '../network/parse.js';
import type { NetworkRecord, ServiceRecord } from '../network/records.js';
import type { NetworkSpec } from '../network/spec.js';
import { firstUsable } from './claims.js';
import type { KeyRing } from './keys.js';
import type { Bucket, Buckets } from './kv.js';
import * as R from './records.js';
import type { BucketView } from './view.js';

export interface GlobalsContext {
  hostId: string;
  networks: BucketView<R.ClusterNetwork>;
  endpoints: BucketView<R.ClusterEndpoint>;
  services: BucketView<R.ClusterService>;
  claims: BucketView<R.ClusterClaim>;
  /** Claims a subnet for a new network (claims.ts). */
  subnet(given: string | undefined): Promise<string>;
  /** Claims a VNI: the one given, or the next free from 4096 (claims.ts). */
  vni(given: number | undefined): Promise<number>;
  /** Claims an encrypted network's VXLAN port (claims.ts). */
  port(given: number | undefined): Promise<number>;
  keys: KeyRing;
  /** A bucket; SIDECAR_CLUSTER_UNAVAILABLE while NATS is away. */
  bucket(k: keyof Buckets): Bucket;
}

export class GlobalRecords {
  readonly #c: GlobalsContext;
  readonly hostId: string;

  constructor(c: GlobalsContext) {
    this.#c = c;
    this.hostId = c.hostId;
  }

  /**
   * A network for every host: its subnet (and for an overlay its VNI; for an encrypted one its
   * VXLAN port and first key) claimed first.
   */
  async createNetwork(
    spec: NetworkSpec,
    needs: { gateway: boolean; vni: boolean; encrypted?: boolean },
  ): Promise<R.ClusterNetwork> {
    if (this.#c.networks.values().some((n) => n.spec.name === spec.name)) {
      throw new SidecarError('SIDECAR_NETWORK_EXISTS', `the cluster has a network ${spec.name}`);
    }
    const given = spec.options['vxlan-port'];
    if (!needs.encrypted && given !== undefined && this.#c.claims.get(R.portKey(Number(given)))) {
      throw new SidecarError('SIDECAR_INVALID_ARGUMENT', `VXLAN port ${given} is an encrypted network's`);
    }
    const subnet = await this.#c.subnet(spec.subnet);
    let vni: number | undefined;
    let port: number | undefined;
    const id = randomBytes(32).toString('hex');
    let keyed = false;
    try {
      if (needs.vni) {
        vni = await this.#c.vni(spec.options.vni === undefined ? undefined : Number(spec.options.vni));
        spec = { ...spec, options: { ...spec.options, vni: String(vni) } };
      }
      if (needs.encrypted) {
        port = await this.#c.port(given === undefined ? undefined : Number(given));
        spec = { ...spec, options: { ...spec.options, 'vxlan-port': String(port) } };
        await this.#c.keys.create(id, parseDuration(spec.options['key-rotation'] ?? '12h')!);
        keyed = true;
      }
      const parsed = parseCidr(subnet)!;
      const gateway = spec.gateway ?? (needs.gateway && parsed.prefix <= 30 ? firstUsable(parsed) : undefined);
      const rec: R.ClusterNetwork = {
        v: 1,
        id,
        spec,
        subnet,
        ...(gateway ? { gateway } : {}),
        host: this.hostId,
        created: new Date().toISOString(),
      };
      if ((await this.#c.bucket('networks').create(rec.id, R.encode(rec))) === 'conflict') {
        throw new SidecarError('SIDECAR_NETWORK_EXISTS', `network id ${rec.id} is taken`);
      }
      return rec;
    } catch (err) {
      const ipam = this.#c.bucket('ipam');
      await ipam.delete(R.subnetKey(subnet)).catch(() => {});
      if (vni !== undefined) await ipam.delete(R.vniKey(vni)).catch(() => {});
      if (port !== undefined) await ipam.delete(R.portKey(port)).catch(() => {});
      if (keyed) await this.#c.keys.remove(id).catch(() => {});
      throw err;
    }
  }

  async removeNetwork(net: NetworkRecord): Promise<void> {
    const theirs = this.#c.endpoints.values().filter((e) => e.network === net.id && e.host !== this.hostId);
    if (theirs.length > 0) {
      const hosts = [...new Set(theirs.map((e) => e.host))].join(', ');
      throw new SidecarError('SIDECAR_NETWORK_IN_USE', `network ${net.spec.name} has endpoints on ${hosts}`);
    }
    if (this.#c.services.values().some((s) => s.network === net.id)) {
      throw new SidecarError('SIDECAR_NETWORK_IN_USE', `network ${net.spec.name} has services`);
    }
    await this.#c.bucket('networks').delete(net.id, this.#c.networks.revision(net.id));
    const ipam = this.#c.bucket('ipam');
    for (const [key] of this.#c.claims.entries()) if (key.startsWith(`block.${net.id}.`)) await ipam.delete(key);
    await ipam.delete(R.subnetKey(net.subnet));
    if (net.spec.options.vni !== undefined) await ipam.delete(R.vniKey(Number(net.spec.options.vni)));
    if (net.spec.options.encrypted !== undefined) {
      await this.#c.keys.remove(net.id);
      await ipam.delete(R.portKey(Number(net.spec.options['vxlan-port'])));
    }
  }

  async createService(net: NetworkRecord, rec: ServiceRecord): Promise<void> {
    const c: R.ClusterService = {
      v: 1,
      id: rec.id,
      spec: rec.spec,
      network: net.id,
      ...(rec.vip ? { vip: rec.vip } : {}),
      ...(rec.mark !== undefined ? { mark: rec.mark } : {}),
      host: this.hostId,
    };
    const r = await this.#c.bucket('services').create(R.serviceKey(net.id, rec.spec.name), R.encode(c));
    if (r === 'conflict') {
      throw new SidecarError(
        'SIDECAR_SERVICE_EXISTS',
        `the cluster has a service ${rec.spec.name} on ${net.spec.name}`,
      );
    }
  }

  async removeService(net: NetworkRecord, rec: ServiceRecord): Promise<void> {
    const key = R.serviceKey(net.id, rec.spec.name);
    await this.#c.bucket('services').delete(key);
  }
}
