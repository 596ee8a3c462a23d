// The cluster's claims in its IPAM bucket, each a compare-and-set create that exactly one host
// wins: the subnets of global networks (from the global pool, 10.0.0.0/8 in /24s, as swarm's
// default address pool), firewall marks unique in the cluster, and this host's address blocks
// (blocks.ts hands out addresses inside them), kept in step with its own store on each resync.
import { IpamError } from '@cnmd/ipam';
import { type Cidr, formatAddr, formatCidr, overlaps, parseCidr } from '@cnmd/netutil';
import type { Blocks } from './blocks.js';
import { blockCidr } from './blocks.js';
import type { Bucket } from './kv.js';
import * as R from './records.js';
import type { BucketView } from './view.js';

const GLOBAL_POOL = { base: parseCidr('10.0.0.0/8')!, size: 24 };

/** Docker's default gateway: the first usable address. */
export function firstUsable(subnet: Cidr): string {
  return formatAddr({ family: 4, value: subnet.value + 1n });
}

export interface ClaimsContext {
  hostId: string;
  claims: BucketView<R.ClusterClaim>;
  networks: BucketView<R.ClusterNetwork>;
  blocks: Blocks;
  /** The IPAM bucket; SIDECAR_CLUSTER_UNAVAILABLE while NATS is away. */
  bucket(): Bucket;
  log(line: string): void;
}

export class Claims {
  readonly #c: ClaimsContext;

  constructor(c: ClaimsContext) {
    this.#c = c;
  }

  async #claim(key: string): Promise<boolean> {
    return (await this.#c.bucket().create(key, R.encode({ v: 1, host: this.#c.hostId }))) !== 'conflict';
  }

  /** A subnet for a new global network: the one given, or the next free /24 of the pool. */
  async subnet(given: string | undefined): Promise<string> {
    const claimed = [...this.#c.claims.entries()]
      .filter(([k]) => k.startsWith('subnet.'))
      .map(([k]) => parseCidr(k.slice('subnet.'.length).replace('_', '/'))!);
    const claim = (cidr: string) => this.#claim(R.subnetKey(cidr));
    if (given) {
      const c = parseCidr(given);
      if (c?.family !== 4) throw new IpamError('IPAM_INVALID_CIDR', `${given} is not an IPv4 subnet`);
      const other = claimed.find((o) => overlaps(o, c));
      if (other || !(await claim(formatCidr(c)))) {
        throw new IpamError(
          'IPAM_POOL_OVERLAP',
          `${given} overlaps ${other ? formatCidr(other) : 'a subnet'} of the cluster`,
        );
      }
      return formatCidr(c);
    }
    const step = 1n << BigInt(32 - GLOBAL_POOL.size);
    for (
      let v = GLOBAL_POOL.base.value;
      v < GLOBAL_POOL.base.value + (1n << BigInt(32 - GLOBAL_POOL.base.prefix));
      v += step
    ) {
      const c = { family: 4 as const, value: v, prefix: GLOBAL_POOL.size };
      if (claimed.some((o) => overlaps(o, c))) continue;
      if (await claim(formatCidr(c))) return formatCidr(c);
    }
    throw new IpamError('IPAM_NO_AVAILABLE_POOL', 'the global pool 10.0.0.0/8 has no free /24 left');
  }

  /** A VNI for an overlay: the one given (SIDECAR_INVALID_ARGUMENT when a host holds it), or the
   * lowest from 4096 (libnetwork's first) that no host holds. */
  async vni(given: number | undefined): Promise<number> {
    if (given !== undefined) {
      if (this.#c.claims.get(R.vniKey(given)) || !(await this.#claim(R.vniKey(given)))) {
        throw new IpamError('IPAM_ID_IN_USE', `VNI ${given} is taken in the cluster`);
      }
      return given;
    }
    for (let vni = 4096; vni < 2 ** 24; vni++) {
      if (this.#c.claims.get(R.vniKey(vni))) continue;
      if (await this.#claim(R.vniKey(vni))) return vni;
    }
    throw new IpamError('IPAM_ID_EXHAUSTED', 'no VNI is left in the cluster');
  }

  /** A VXLAN port of an encrypted overlay, its own in the cluster: the one given, or the lowest
   * free from 4800 (4789, the clear overlays' port, is never one). */
  async port(given: number | undefined): Promise<number> {
    if (given !== undefined) {
      const clear = this.#c.networks.values().some((n) => Number(n.spec.options['vxlan-port'] ?? 4789) === given);
      if (clear || this.#c.claims.get(R.portKey(given)) || !(await this.#claim(R.portKey(given)))) {
        throw new IpamError('IPAM_ID_IN_USE', `VXLAN port ${given} is taken in the cluster`);
      }
      return given;
    }
    const used = new Set(this.#c.networks.values().map((n) => Number(n.spec.options['vxlan-port'] ?? 4789)));
    for (let port = 4800; port < 65536; port++) {
      if (used.has(port) || this.#c.claims.get(R.portKey(port))) continue;
      if (await this.#claim(R.portKey(port))) return port;
    }
    throw new IpamError('IPAM_ID_EXHAUSTED', 'no VXLAN port is left in the cluster');
  }

  /** The lowest firewall mark from 256 that no host holds. */
  async mark(): Promise<number> {
    for (let mark = 256; mark < 2 ** 20; mark++) {
      if (this.#c.claims.get(R.markKey(mark))) continue;
      if (await this.#claim(R.markKey(mark))) return mark;
    }
    throw new IpamError('IPAM_ID_EXHAUSTED', 'no firewall mark is left in the cluster');
  }

  /** This host's blocks in its store and in the cluster agree: each takes the other's. */
  async syncBlocks(): Promise<void> {
    const mine = new Set(this.#c.blocks.records.all().map((b) => R.blockKey(b.network, b.index)));
    for (const [key, held] of this.#c.claims.entries()) {
      const m = /^block\.([0-9a-f]{64})\.(\d+)$/.exec(key);
      if (!m || held.value.host !== this.#c.hostId || mine.has(key)) continue;
      const net = this.#c.networks.get(m[1]!);
      if (!net) continue;
      await this.#c.blocks.records.put({
        id: `${m[1]}.${m[2]}`,
        network: m[1]!,
        index: Number(m[2]),
        cidr: blockCidr(parseCidr(net.subnet)!, Number(m[2])),
      });
    }
    for (const b of this.#c.blocks.records.all()) {
      const key = R.blockKey(b.network, b.index);
      const holder = this.#c.claims.get(key)?.host;
      if (holder === this.#c.hostId) continue;
      if (holder !== undefined) {
        this.#c.log(`cluster: block ${b.cidr} is held here and by ${holder}: addresses in it may be held twice`);
        continue;
      }
      await this.#claim(key);
    }
  }
}
