// Addresses of global networks, as Calico's block affinity does it: a host claims a block of a
// network's subnet (a compare-and-set create of its key in the IPAM bucket) and hands out the
// addresses inside its own blocks from its local pool, so an attach costs no round trip while
// its blocks have room, and two hosts never hold one address. A block left empty is given back.
// Which blocks this host holds is also written in its own store, so an attach works while NATS
// is away, and a restart knows them before the cluster answers.
import { type Allocation, type Ipam, IpamError, type Store } from '@cnmd/ipam';
import { type Cidr, formatAddr, parseAddr, parseCidr } from '@cnmd/netutil';
import { SidecarError } from '../errors.js';
import type { NetworkRecord } from '../network/records.js';
import { Records } from '../network/store.js';
import type { Bucket } from './kv.js';
import { blockKey, encode, RECORD_VERSION } from './records.js';

/** A block of a global network that this host holds. */
export interface BlockRecord {
  /** `<network id>.<index>` */
  id: string;
  network: string;
  index: number;
  cidr: string;
}

/** The block size of a subnet: /26 (64 addresses), or a quarter of a subnet smaller than a /24. */
export function blockPrefix(subnetPrefix: number): number {
  return subnetPrefix >= 24 ? Math.min(subnetPrefix + 2, 32) : 26;
}

export function blockCidr(subnet: Cidr, index: number): string {
  const prefix = blockPrefix(subnet.prefix);
  return `${formatAddr({ family: 4, value: subnet.value + (BigInt(index) << BigInt(32 - prefix)) })}/${prefix}`;
}

export function blockIndexOf(subnet: Cidr, address: string): number {
  const a = parseAddr(address);
  if (a?.family !== 4) throw new SidecarError('SIDECAR_INVALID_ARGUMENT', `${address} is not an IPv4 address`);
  return Number((a.value - subnet.value) >> BigInt(32 - blockPrefix(subnet.prefix)));
}

export interface BlocksContext {
  hostId: string;
  ipam: Ipam;
  /** The IPAM bucket; throws SIDECAR_CLUSTER_UNAVAILABLE while NATS is away. */
  bucket(): Bucket;
  /** Who holds a block, by the cluster's view (undefined: nobody). */
  holder(network: string, index: number): string | undefined;
  log(line: string): void;
}

export class Blocks {
  readonly records: Records<BlockRecord>;
  readonly #c: BlocksContext;

  constructor(store: Store, c: BlocksContext) {
    this.records = new Records(store, 'block');
    this.#c = c;
  }

  /** This host's blocks of a network, lowest first. */
  mine(net: NetworkRecord): BlockRecord[] {
    return this.records
      .all()
      .filter((b) => b.network === net.id)
      .sort((a, b) => a.index - b.index);
  }

  async request(net: NetworkRecord, req: { address?: string; mac?: boolean | string }): Promise<Allocation> {
    const { ipam } = this.#c;
    const subnet = parseCidr(net.subnet)!;
    if (req.address !== undefined) {
      const index = blockIndexOf(subnet, req.address);
      if (!this.mine(net).some((b) => b.index === index)) await this.#claim(net, subnet, index);
      return ipam.requestAddress(net.pool4, req);
    }
    for (const b of this.mine(net)) {
      try {
        return await ipam.requestAddress(net.pool4, { within: b.cidr, ...(req.mac ? { mac: req.mac } : {}) });
      } catch (err) {
        if ((err as { code?: string }).code !== 'IPAM_POOL_EXHAUSTED') throw err;
      }
    }
    // Every block held is full: one more, the lowest that nobody holds.
    const count = 2 ** (blockPrefix(subnet.prefix) - subnet.prefix);
    for (let index = 0; index < count; index++) {
      if (this.#c.holder(net.id, index) !== undefined || this.records.get(`${net.id}.${index}`)) continue;
      if (!(await this.#claim(net, subnet, index, true))) continue;
      try {
        return await ipam.requestAddress(net.pool4, {
          within: blockCidr(subnet, index),
          ...(req.mac ? { mac: req.mac } : {}),
        });
      } catch (err) {
        if ((err as { code?: string }).code !== 'IPAM_POOL_EXHAUSTED') throw err;
        await this.#giveBack(net, index); // a block of reserved addresses only
      }
    }
    throw new IpamError('IPAM_POOL_EXHAUSTED', `every block of ${net.subnet} is full or held by another host`);
  }

  /** Returns an address; its block, left empty, goes back to the cluster. */
  async release(net: NetworkRecord, address: string): Promise<void> {
    const { ipam } = this.#c;
    await ipam.releaseAddress(net.pool4, address);
    const subnet = parseCidr(net.subnet)!;
    const index = blockIndexOf(subnet, address);
    if (!this.records.get(`${net.id}.${index}`)) return;
    if (ipam.usedIn(net.pool4, blockCidr(subnet, index)) === 0) {
      await this.#giveBack(net, index).catch((err) =>
        this.#c.log(`block ${blockCidr(subnet, index)} of ${net.spec.name} stays held: ${(err as Error).message}`),
      );
    }
  }

  /**
   * Claims a block: in the cluster first (a CAS create: exactly one host gets it), then in this
   * host's store. With `quiet`, a block someone else took first is false; else an error.
   */
  async #claim(net: NetworkRecord, subnet: Cidr, index: number, quiet = false): Promise<boolean> {
    const holder = this.#c.holder(net.id, index);
    if (holder !== undefined && holder !== this.#c.hostId) {
      throw new IpamError('IPAM_ADDRESS_IN_USE', `block ${blockCidr(subnet, index)} is held by host ${holder}`);
    }
    const r = await this.#c
      .bucket()
      .create(blockKey(net.id, index), encode({ v: RECORD_VERSION, host: this.#c.hostId }));
    if (r === 'conflict') {
      const got = await this.#c.bucket().get(blockKey(net.id, index));
      if (!got?.value.includes(`"host":"${this.#c.hostId}"`)) {
        if (quiet) return false;
        throw new IpamError('IPAM_ADDRESS_IN_USE', `block ${blockCidr(subnet, index)} is held by another host`);
      }
    }
    await this.records.put({ id: `${net.id}.${index}`, network: net.id, index, cidr: blockCidr(subnet, index) });
    return true;
  }

  async #giveBack(net: NetworkRecord, index: number): Promise<void> {
    await this.records.delete(`${net.id}.${index}`);
    await this.#c.bucket().delete(blockKey(net.id, index));
  }
}
