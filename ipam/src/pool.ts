import {
  type Cidr,
  cidrLast,
  cidrSize,
  contains,
  type Family,
  formatAddr,
  formatCidr,
  formatIp4,
  parseIp4,
} from '@cnmd/netutil';
import { BitmapAllocator } from './allocators/bitmap-allocator.js';
import { SparseAllocator } from './allocators/sparse-allocator.js';
import type { SlotAllocator } from './allocators/types.js';
import { IpamError } from './errors.js';
import { parseCidr, requireIp } from './ip.js';
import { formatMac, ipDerivedMac, type MacStrategy, parseMac, randomMac } from './mac.js';

export type AddressSpace = 'local' | 'global';

/** What a pool is, as stored: enough to rebuild it. */
export interface PoolConfig {
  space: AddressSpace;
  subnet: string;
  ipRange?: string;
  /** The gateway address, or none (false). */
  gateway: string | false;
  auxAddresses: Record<string, string>;
  macs: MacStrategy;
}

/** Ranges up to this many addresses get a bitmap (2 MiB for a /8); larger ones a sparse set. */
const BITMAP_LIMIT = 2n ** 24n;

type Slot = number | bigint;

const OCTETS = Array.from({ length: 256 }, (_, i) => String(i));

/** One subnet and the addresses handed out of it. */
export class Pool {
  readonly id: string;
  readonly config: PoolConfig;
  readonly cidr: Cidr;
  readonly range: Cidr | undefined;
  readonly family: Family;
  /** Slots reserved by the pool itself: network, broadcast, gateway, auxiliary addresses. */
  readonly reserved: number;
  readonly #slots: SlotAllocator<Slot>;
  readonly #toSlot: (offset: bigint) => Slot;
  readonly #format: (slot: Slot) => string;
  readonly #lo: Slot;
  readonly #hi: Slot;
  /** The network address as a number, for IPv4 pools in a bitmap; -1 otherwise. */
  readonly #base4: number = -1;
  readonly #reservedSlots = new Set<Slot>();
  readonly #keys: string[] = [];
  readonly #macs = new Map<Slot, number>();
  readonly #macsInUse = new Set<number>();

  /** Store keys of this pool's addresses start with this. */
  readonly keyPrefix: string;

  constructor(id: string, config: PoolConfig) {
    this.id = id;
    this.keyPrefix = `addr/${id}/`;
    this.config = config;
    const cidr = parseCidr(config.subnet);
    this.cidr = cidr;
    this.family = cidr.family;
    if (config.macs === 'ip-derived' && cidr.family !== 4) {
      throw new IpamError('IPAM_INVALID_OPTION', `MAC strategy ip-derived needs an IPv4 subnet, not ${config.subnet}`);
    }
    const size = cidrSize(cidr);
    if (size <= BITMAP_LIMIT) {
      const bitmap = new BitmapAllocator(Number(size));
      this.#slots = bitmap as SlotAllocator<Slot>;
      this.#toSlot = Number;
      if (cidr.family === 4) {
        const base = Number(cidr.value);
        this.#base4 = base;
        // Addresses are made on every allocation: the text of each /24 is made once, so an
        // address is one concatenation.
        const blocks: string[] = [];
        const firstBlock = base >>> 8;
        this.#format = (slot) => {
          const n = base + (slot as number);
          const b = (n >>> 8) - firstBlock;
          return (blocks[b] ??= formatIp4((n & ~255) >>> 0).slice(0, -1)) + OCTETS[n & 255];
        };
      } else {
        this.#format = (slot) => formatAddr({ family: 6, value: cidr.value + BigInt(slot) });
      }
    } else {
      this.#slots = new SparseAllocator(size) as SlotAllocator<Slot>;
      this.#toSlot = (offset) => offset;
      this.#format = (slot) => formatAddr({ family: cidr.family, value: cidr.value + (slot as bigint) });
    }

    // The network address (RFC 4291 2.6.1: the subnet-router anycast address in IPv6) and the
    // IPv4 broadcast address are never handed out; /31 and /32 have neither (RFC 3021).
    if (cidr.family === 6 || cidr.prefix <= 30) this.#reserve(0n);
    if (cidr.family === 4 && cidr.prefix <= 30) this.#reserve(size - 1n);

    if (config.ipRange !== undefined) {
      const range = parseCidr(config.ipRange);
      if (range.family !== cidr.family || range.value < cidr.value || cidrLast(range) > cidrLast(cidr)) {
        throw new IpamError('IPAM_INVALID_RANGE', `ip-range ${config.ipRange} is not inside subnet ${config.subnet}`);
      }
      this.range = range;
      this.#lo = this.#toSlot(range.value - cidr.value);
      this.#hi = this.#toSlot(cidrLast(range) - cidr.value);
    } else {
      this.range = undefined;
      this.#lo = this.#toSlot(0n);
      this.#hi = this.#toSlot(size - 1n);
    }
    if (config.gateway !== false) this.#reserve(this.#offsetOf(config.gateway, 'gateway'), 'gateway');
    for (const [name, addr] of Object.entries(config.auxAddresses)) {
      this.#reserve(this.#offsetOf(addr, `auxiliary address ${name}`), `auxiliary address ${name}`);
    }
    this.reserved = this.#reservedSlots.size;
  }

  get subnet(): string {
    return formatCidr(this.cidr);
  }

  /** Addresses handed out (not counting the reserved ones). */
  get used(): number {
    return this.#slots.used - this.reserved;
  }

  /** The first usable address of a subnet: Docker's default gateway. */
  static firstUsable(subnet: string): string | false {
    const cidr = parseCidr(subnet);
    const size = cidrSize(cidr);
    if (cidr.family === 4 ? cidr.prefix > 30 : size < 4n) return false;
    return formatAddr({ family: cidr.family, value: cidr.value + 1n });
  }

  /** Takes the next free slot of the dynamic range; undefined when it is exhausted. */
  next(): Slot | undefined {
    return this.#slots.next(this.#lo, this.#hi);
  }

  /** The first and last slot of a CIDR inside this pool's subnet; throws when it is not inside. */
  slotsOf(within: string): [Slot, Slot] {
    const c = parseCidr(within);
    if (c.family !== this.cidr.family || c.value < this.cidr.value || cidrLast(c) > cidrLast(this.cidr)) {
      throw new IpamError('IPAM_INVALID_RANGE', `${within} is not inside subnet ${this.subnet}`);
    }
    return [this.#toSlot(c.value - this.cidr.value), this.#toSlot(cidrLast(c) - this.cidr.value)];
  }

  /** Takes the next free slot of [lo, hi] (a block of the subnet); undefined when there is none. */
  nextIn([lo, hi]: [Slot, Slot]): Slot | undefined {
    return this.#slots.next(lo, hi);
  }

  /** Slots handed out in [lo, hi], reserved ones not counted. */
  usedIn([lo, hi]: [Slot, Slot]): number {
    let n = 0;
    for (const s of this.#slots.taken()) if (s >= lo && s <= hi && !this.#reservedSlots.has(s)) n++;
    return n;
  }

  /** The slot of an address of this pool; throws when it is not one. */
  slotOf(address: string): Slot {
    if (this.#base4 >= 0) {
      // IPv4 in a bitmap: plain numbers, no bigint (a release parses one address).
      const offset = parseIp4(address) - this.#base4;
      if (offset >= 0 && offset < (this.#slots.size as number)) return offset;
    }
    return this.#toSlot(this.#offsetOf(address, 'address'));
  }

  /** Takes a given address; throws when it is reserved or taken. */
  take(address: string): Slot {
    const slot = this.slotOf(address);
    if (this.#reservedSlots.has(slot)) {
      throw new IpamError('IPAM_ADDRESS_RESERVED', `${address} is reserved in pool ${this.subnet}`);
    }
    if (!this.#slots.take(slot)) throw new IpamError('IPAM_ADDRESS_IN_USE', `${address} is already in use`);
    return slot;
  }

  has(slot: Slot): boolean {
    return this.#slots.has(slot);
  }

  isReserved(slot: Slot): boolean {
    return this.#reservedSlots.has(slot);
  }

  /** Frees a slot and the MAC that went with it; `rewind` undoes next() as well. */
  free(slot: Slot, rewind = false): void {
    if (rewind) this.#slots.unnext(slot);
    else this.#slots.free(slot);
    const mac = this.#macs.get(slot);
    if (mac !== undefined) {
      this.#macs.delete(slot);
      this.#macsInUse.delete(mac);
    }
  }

  /** Continues dynamic allocation after this slot. */
  resume(slot: Slot): void {
    this.#slots.resume(slot);
  }

  /** Marks a slot taken without checks: for state loaded from the store and for conflicts. */
  mark(slot: Slot): void {
    this.#slots.take(slot);
  }

  /** Chooses the MAC for an address: given, derived from the IPv4 address, or random. */
  chooseMac(slot: Slot, address: string, given: string | undefined): string {
    let mac: number;
    if (given !== undefined) {
      mac = parseMac(given);
      if (this.#macsInUse.has(mac)) throw new IpamError('IPAM_MAC_IN_USE', `${given} is already in use`);
    } else if (this.config.macs === 'ip-derived') {
      const text = ipDerivedMac(Number(requireIp(address).value));
      this.bindMac(slot, parseMac(text));
      return text;
    } else {
      do mac = randomMac();
      while (this.#macsInUse.has(mac));
    }
    this.bindMac(slot, mac);
    return formatMac(mac);
  }

  bindMac(slot: Slot, mac: number): void {
    this.#macs.set(slot, mac);
    this.#macsInUse.add(mac);
  }

  /** The addresses handed out (reserved ones left out), with their MACs. */
  allocations(): { address: string; mac?: string }[] {
    const out: { address: string; mac?: string }[] = [];
    for (const slot of this.#slots.taken()) {
      if (this.#reservedSlots.has(slot)) continue;
      const mac = this.macOf(slot);
      out.push(mac === undefined ? { address: this.#format(slot) } : { address: this.#format(slot), mac });
    }
    return out;
  }

  /**
   * The store key of a slot's address. Keys are kept once made: the same string each time
   * means its hash is computed once, and that is a third of the cost of an allocation.
   */
  key(slot: Slot): string {
    if (typeof slot !== 'number') return this.keyPrefix + this.#format(slot);
    let key = this.#keys[slot];
    if (key === undefined) this.#keys[slot] = key = this.keyPrefix + this.#format(slot);
    return key;
  }

  format(slot: Slot): string {
    return this.#format(slot);
  }

  macOf(slot: Slot): string | undefined {
    const mac = this.#macs.get(slot);
    return mac === undefined ? undefined : formatMac(mac);
  }

  #offsetOf(address: string, what: string): bigint {
    const ip = requireIp(address, what);
    if (!contains(this.cidr, ip)) {
      throw new IpamError('IPAM_ADDRESS_OUT_OF_RANGE', `${what} ${address} is not in subnet ${this.subnet}`);
    }
    return ip.value - this.cidr.value;
  }

  #reserve(offset: bigint, what?: string): void {
    const slot = this.#toSlot(offset);
    if (what !== undefined && this.#reservedSlots.has(slot)) {
      throw new IpamError('IPAM_ADDRESS_RESERVED', `${what} ${this.#format(slot)} is reserved already`);
    }
    this.#reservedSlots.add(slot);
    this.#slots.take(slot);
  }
}
