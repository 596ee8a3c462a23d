import type { SlotAllocator } from './types.js';

/**
 * Slots of a range too large for a bitmap (an IPv6 /64 has 2^64): only the taken slots are
 * kept. Allocation walks forward from the last slot handed out, which stays short because a
 * pool this large is almost empty.
 */
export class SparseAllocator implements SlotAllocator<bigint> {
  readonly size: bigint;
  #taken = new Set<bigint>();
  #cursor = -1n;
  #previous = -1n;

  constructor(size: bigint) {
    if (size < 1n) throw new RangeError(`sparse size ${size} out of range`);
    this.size = size;
  }

  get used(): number {
    return this.#taken.size;
  }

  has(slot: bigint): boolean {
    return this.#taken.has(slot);
  }

  take(slot: bigint): boolean {
    if (this.#taken.has(slot)) return false;
    this.#taken.add(slot);
    return true;
  }

  free(slot: bigint): boolean {
    return this.#taken.delete(slot);
  }

  resume(slot: bigint): void {
    this.#cursor = slot;
  }

  unnext(slot: bigint): void {
    this.free(slot);
    if (this.#cursor === slot) this.#cursor = this.#previous;
  }

  taken(): Iterable<bigint> {
    return [...this.#taken].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  next(lo: bigint, hi: bigint): bigint | undefined {
    let taken = 0n;
    for (const s of this.#taken) if (s >= lo && s <= hi) taken++;
    if (taken > hi - lo) return undefined;
    let slot = this.#cursor + 1n;
    if (slot < lo || slot > hi) slot = lo;
    while (this.#taken.has(slot)) slot = slot === hi ? lo : slot + 1n;
    this.#taken.add(slot);
    this.#previous = this.#cursor;
    this.#cursor = slot;
    return slot;
  }
}
