import { type Cidr, cidrLast, type Family, familyBits, formatCidr, overlaps } from '@cnmd/netutil';
import { BitmapAllocator } from './allocators/bitmap-allocator.js';
import { type AddressEvent, addressChannel, type PoolEvent, poolChannel } from './diagnostics.js';
import { IpamError } from './errors.js';
import { parseCidr } from './ip.js';
import { type MacStrategy, parseMac } from './mac.js';
import { checkRange, defaultOptions, type IpamOptions, type ParsedSpec, parseSpecs } from './options.js';
import { type AddressSpace, Pool, type PoolConfig } from './pool.js';
import type { Store, StoreResult } from './stores/types.js';

export interface PoolRequest {
  /** Default `local`. */
  space?: AddressSpace;
  /** The subnet; without it, the next free one of the space's default pools. */
  subnet?: string;
  /** With no subnet: which family to take from the default pools (default 4). */
  family?: Family;
  /** With no subnet: subnets the chosen one must not overlap (the host's routes, say). */
  avoid?: string[];
  /** Where dynamic addresses come from (Docker's --ip-range); inside the subnet. */
  ipRange?: string;
  /** The gateway; default the first usable address; false for none. */
  gateway?: string | false;
  /** Addresses the pool must never hand out (Docker's --aux-address), by name. */
  auxAddresses?: Record<string, string>;
  /** Default `random`; `ip-derived` (IPv4 only) for overlays. */
  macs?: MacStrategy;
}

export interface PoolInfo extends PoolConfig {
  id: string;
  family: Family;
  /** Addresses handed out, not counting reserved ones. */
  used: number;
}

export interface AddressRequest {
  /** A given address instead of the next free one. */
  address?: string;
  /** The next free address of this CIDR of the subnet (a host's block of a cluster network)
   * instead of the pool's dynamic range. */
  within?: string;
  /** true: allocate a MAC by the pool's strategy; a string: that MAC. */
  mac?: boolean | string;
}

export interface Allocation {
  address: string;
  mac?: string;
}

export type IdKind = 'vni' | 'mark';

const POOL = 'pool/';
const ADDR = 'addr/';
const ID = 'id/';

/** Conflicts in a row (another writer took the address first) before a dynamic request gives up. */
const MAX_CONFLICTS = 64;

/**
 * Address management as libnetwork's IPAM does it: pools in a local and a global address space,
 * addresses and MACs out of them, and the VNIs and firewall marks that overlays and services
 * need. State lives in the injected store; the bitmaps here are rebuilt from it by start().
 */
export class Ipam {
  readonly #store: Store;
  readonly #specs: Record<AddressSpace, ParsedSpec[]>;
  readonly #idRanges: Record<IdKind, [number, number]>;
  readonly #ids = new Map<IdKind, BitmapAllocator>();
  readonly #pools = new Map<string, Pool>();
  /** Pools being released: they hand out nothing more. */
  readonly #closing = new Set<string>();
  #started = false;
  #closed = false;

  constructor(options: Partial<IpamOptions> & { store: Store }) {
    const o = { ...defaultOptions(), ...options };
    if (!o.store) throw new IpamError('IPAM_INVALID_OPTION', 'a store is required');
    this.#store = o.store;
    this.#specs = { local: parseSpecs(o.localPools, 'localPools'), global: parseSpecs(o.globalPools, 'globalPools') };
    checkRange(o.vniRange, 'vniRange', 2 ** 24 - 1);
    checkRange(o.markRange, 'markRange', 2 ** 32 - 1);
    this.#idRanges = { vni: o.vniRange, mark: o.markRange };
  }

  /** Loads pools, addresses and ids from the store. */
  async start(): Promise<void> {
    if (this.#started) return;
    for (const e of await this.#store.list(POOL)) {
      const id = e.key.slice(POOL.length);
      this.#pools.set(id, new Pool(id, JSON.parse(e.value) as PoolConfig));
    }
    // The newest address of each pool (highest revision) was the last handed out: allocation
    // continues after it, so a restart does not go back to reusing just-released addresses.
    const newest = new Map<Pool, { revision: number; slot: number | bigint }>();
    for (const e of await this.#store.list(ADDR)) {
      const cut = e.key.lastIndexOf('/');
      const pool = this.#pools.get(e.key.slice(ADDR.length, cut));
      if (!pool) continue; // left by a pool released while this key's delete was lost: harmless
      const slot = pool.slotOf(e.key.slice(cut + 1));
      pool.mark(slot);
      if (e.value) pool.bindMac(slot, parseMac(e.value));
      if ((newest.get(pool)?.revision ?? -1) < e.revision) newest.set(pool, { revision: e.revision, slot });
    }
    for (const [pool, { slot }] of newest) pool.resume(slot);
    for (const e of await this.#store.list(ID)) {
      const [kind, n] = e.key.slice(ID.length).split('/') as [IdKind, string];
      if (kind in this.#idRanges) this.#idAllocator(kind).take(Number(n) - this.#idRanges[kind][0]);
    }
    this.#started = true;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  pools(): PoolInfo[] {
    return [...this.#pools.values()].map(info);
  }

  pool(id: string): PoolInfo | undefined {
    const p = this.#pools.get(id);
    return p && info(p);
  }

  /** Every address handed out of a pool, with its MAC. */
  addresses(poolId: string): Allocation[] {
    return this.#pool(poolId).allocations();
  }

  async requestPool(req: PoolRequest = {}): Promise<PoolInfo> {
    this.#ready();
    const space = req.space ?? 'local';
    if (space !== 'local' && space !== 'global') {
      throw new IpamError('IPAM_INVALID_OPTION', `unknown address space ${JSON.stringify(space)}`);
    }
    let subnet: Cidr;
    if (req.subnet !== undefined) {
      subnet = parseCidr(req.subnet);
      const other = this.#overlapping(space, subnet);
      if (other) {
        throw new IpamError('IPAM_POOL_OVERLAP', `subnet ${req.subnet} overlaps pool ${other.subnet} (${other.id})`);
      }
    } else {
      if (req.family !== undefined && req.family !== 4 && req.family !== 6) {
        throw new IpamError('IPAM_INVALID_OPTION', `family must be 4 or 6, not ${JSON.stringify(req.family)}`);
      }
      subnet = this.#nextSubnet(space, req.family ?? 4, (req.avoid ?? []).map(parseCidr));
    }
    const cidr = formatCidr(subnet);
    const config: PoolConfig = {
      space,
      subnet: cidr,
      gateway: req.gateway ?? Pool.firstUsable(cidr),
      auxAddresses: { ...req.auxAddresses },
      macs: req.macs ?? 'random',
    };
    if (req.ipRange !== undefined) config.ipRange = req.ipRange;
    if (config.macs !== 'random' && config.macs !== 'ip-derived') {
      throw new IpamError('IPAM_INVALID_OPTION', `unknown MAC strategy ${JSON.stringify(config.macs)}`);
    }
    const id = `${space}/${cidr}`;
    const pool = new Pool(id, config); // validates range, gateway, aux addresses
    this.#pools.set(id, pool); // reserved now, so a concurrent request cannot take it too
    try {
      const [r] = await this.#store.commit([{ op: 'create', key: POOL + id, value: JSON.stringify(config) }]);
      if (r === 'conflict') throw new IpamError('IPAM_POOL_OVERLAP', `pool ${id} was created elsewhere`);
    } catch (err) {
      this.#pools.delete(id);
      throw err;
    }
    if (poolChannel.hasSubscribers) poolChannel.publish({ op: 'create', pool: id, subnet: cidr } satisfies PoolEvent);
    return info(pool);
  }

  /** Releases an empty pool; one with addresses still handed out is refused. */
  async releasePool(id: string): Promise<void> {
    this.#ready();
    const pool = this.#pool(id);
    if (pool.used > 0) {
      throw new IpamError('IPAM_POOL_IN_USE', `pool ${id} still has ${pool.used} address(es) in use`);
    }
    this.#closing.add(id);
    try {
      await this.#store.commit([{ op: 'delete', key: POOL + id }]);
      this.#pools.delete(id);
      if (poolChannel.hasSubscribers) {
        poolChannel.publish({ op: 'release', pool: id, subnet: pool.subnet } satisfies PoolEvent);
      }
    } finally {
      this.#closing.delete(id);
    }
  }

  async requestAddress(poolId: string, req?: AddressRequest): Promise<Allocation> {
    this.#ready();
    const pool = this.#pool(poolId);
    if (this.#closing.size > 0 && this.#closing.has(poolId)) {
      throw new IpamError('IPAM_POOL_NOT_FOUND', `pool ${poolId} is being released`);
    }
    const fixed = req?.address !== undefined;
    for (let conflicts = 0; conflicts < MAX_CONFLICTS; conflicts++) {
      let slot: number | bigint;
      let address: string;
      if (fixed) {
        slot = pool.take(req.address as string);
        address = pool.format(slot);
      } else {
        const next = req?.within === undefined ? pool.next() : pool.nextIn(pool.slotsOf(req.within));
        if (next === undefined) {
          if (addressChannel.hasSubscribers) {
            addressChannel.publish({ op: 'exhausted', pool: poolId } satisfies AddressEvent);
          }
          const where = req?.within === undefined ? '' : ` within ${req.within}`;
          throw new IpamError('IPAM_POOL_EXHAUSTED', `no free address left in pool ${poolId}${where}`);
        }
        slot = next;
        address = pool.format(slot);
      }
      let mac: string | undefined;
      let results: StoreResult[];
      try {
        if (req?.mac) mac = pool.chooseMac(slot, address, typeof req.mac === 'string' ? req.mac : undefined);
        results = await this.#store.commit([{ op: 'create', key: pool.key(slot), value: mac ?? '' }]);
      } catch (err) {
        pool.free(slot, !fixed);
        throw err;
      }
      if (results[0] !== 'conflict') {
        if (addressChannel.hasSubscribers) {
          addressChannel.publish({ op: 'allocate', pool: poolId, address } satisfies AddressEvent);
        }
        return mac === undefined ? { address } : { address, mac };
      }
      // Another writer holds the address: drop our MAC for it, keep the slot marked as taken.
      pool.free(slot);
      pool.mark(slot);
      if (fixed) throw new IpamError('IPAM_ADDRESS_IN_USE', `${address} is already in use`);
    }
    throw new IpamError(
      'IPAM_STORE_CONFLICT',
      `pool ${poolId}: ${MAX_CONFLICTS} addresses in a row were taken elsewhere`,
    );
  }

  /** How many addresses of `within` (a CIDR of the pool's subnet) are handed out. */
  usedIn(poolId: string, within: string): number {
    this.#ready();
    const pool = this.#pool(poolId);
    return pool.usedIn(pool.slotsOf(within));
  }

  /** Returns an address to its pool; false when it was not handed out. */
  async releaseAddress(poolId: string, address: string): Promise<boolean> {
    this.#ready();
    const pool = this.#pool(poolId);
    const slot = pool.slotOf(address);
    if (pool.isReserved(slot)) {
      throw new IpamError('IPAM_ADDRESS_RESERVED', `${address} is reserved in pool ${poolId}, not handed out`);
    }
    if (!pool.has(slot)) return false;
    await this.#store.commit([{ op: 'delete', key: pool.key(slot) }]);
    pool.free(slot);
    if (addressChannel.hasSubscribers)
      addressChannel.publish({ op: 'release', pool: poolId, address } satisfies AddressEvent);
    return true;
  }

  /** A VNI or firewall mark: the next free one, or a given one. */
  async requestId(kind: IdKind, id?: number): Promise<number> {
    this.#ready();
    const [lo, hi] = this.#range(kind);
    const ids = this.#idAllocator(kind);
    let slot: number | undefined;
    if (id !== undefined) {
      if (!Number.isInteger(id) || id < lo || id > hi) {
        throw new IpamError('IPAM_ID_OUT_OF_RANGE', `${kind} ${id} is outside ${lo}..${hi}`);
      }
      slot = id - lo;
      if (!ids.take(slot)) throw new IpamError('IPAM_ID_IN_USE', `${kind} ${id} is already in use`);
    } else {
      slot = ids.next(0, hi - lo);
      if (slot === undefined) throw new IpamError('IPAM_ID_EXHAUSTED', `no free ${kind} left in ${lo}..${hi}`);
    }
    const n = lo + slot;
    let r: StoreResult[];
    try {
      r = await this.#store.commit([{ op: 'create', key: `${ID}${kind}/${n}`, value: '' }]);
    } catch (err) {
      if (id === undefined) ids.unnext(slot);
      else ids.free(slot);
      throw err;
    }
    if (r[0] === 'conflict') {
      if (id !== undefined) throw new IpamError('IPAM_ID_IN_USE', `${kind} ${id} is already in use`);
      return this.requestId(kind); // taken elsewhere: it stays marked here, try the next
    }
    return n;
  }

  async releaseId(kind: IdKind, id: number): Promise<boolean> {
    this.#ready();
    const [lo, hi] = this.#range(kind);
    if (!Number.isInteger(id) || id < lo || id > hi) {
      throw new IpamError('IPAM_ID_OUT_OF_RANGE', `${kind} ${id} is outside ${lo}..${hi}`);
    }
    const ids = this.#idAllocator(kind);
    if (!ids.has(id - lo)) return false;
    await this.#store.commit([{ op: 'delete', key: `${ID}${kind}/${id}` }]);
    ids.free(id - lo);
    return true;
  }

  #ready(): void {
    if (this.#closed) throw new IpamError('IPAM_STORE_CLOSED', 'ipam is closed');
    if (!this.#started) throw new IpamError('IPAM_INVALID_OPTION', 'ipam is not started: call start() first');
  }

  #pool(id: string): Pool {
    const pool = this.#pools.get(id);
    if (!pool) throw new IpamError('IPAM_POOL_NOT_FOUND', `no pool ${JSON.stringify(id)}`);
    return pool;
  }

  #range(kind: IdKind): [number, number] {
    const r = this.#idRanges[kind];
    if (!r) throw new IpamError('IPAM_INVALID_OPTION', `unknown id kind ${JSON.stringify(kind)}`);
    return r;
  }

  #idAllocator(kind: IdKind): BitmapAllocator {
    let a = this.#ids.get(kind);
    if (!a) {
      const [lo, hi] = this.#range(kind);
      a = new BitmapAllocator(hi - lo + 1);
      this.#ids.set(kind, a);
    }
    return a;
  }

  #overlapping(space: AddressSpace, subnet: Cidr): Pool | undefined {
    for (const p of this.#pools.values()) if (p.config.space === space && overlaps(p.cidr, subnet)) return p;
    return undefined;
  }

  /** The first subnet of the default pools that overlaps no pool in use and nothing to avoid. */
  #nextSubnet(space: AddressSpace, family: Family, avoid: Cidr[]): Cidr {
    const taken = [...this.#pools.values()].filter((p) => p.config.space === space).map((p) => p.cidr);
    taken.push(...avoid);
    for (const spec of this.#specs[space]) {
      if (spec.base.family !== family) continue;
      const block = 1n << BigInt(familyBits(family) - spec.size);
      const end = cidrLast(spec.base);
      let candidate: Cidr = { family, value: spec.base.value, prefix: spec.size };
      for (;;) {
        const hit = taken.find((t) => overlaps(t, candidate));
        if (!hit) return candidate;
        // Jump past what it overlaps, to the next aligned block.
        const after = cidrLast(hit) + 1n;
        const base = ((after + block - 1n) / block) * block;
        if (base > end) break;
        candidate = { family, value: base, prefix: spec.size };
      }
    }
    throw new IpamError('IPAM_NO_AVAILABLE_POOL', `no free IPv${family} subnet left in the ${space} default pools`);
  }
}

function info(p: Pool): PoolInfo {
  return { id: p.id, family: p.family, used: p.used, ...p.config, auxAddresses: { ...p.config.auxAddresses } };
}
