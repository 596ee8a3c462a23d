import type { SlotAllocator } from './types.js';

// Words are compared as signed 32-bit integers: a full word is -1.
const FULL = -1;

/**
 * Slots in a bitmap of 32-bit words, for ranges up to 2^31 slots (an IPv4 /1, a VNI or mark
 * range). Finding the next free slot skips whole full words, so filling a /16 in order costs
 * one word read per slot.
 */
export class BitmapAllocator implements SlotAllocator<number> {
  readonly size: number;
  #words: Uint32Array;
  #used = 0;
  #cursor = -1;
  #previous = -1;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1 || size > 2 ** 31) throw new RangeError(`bitmap size ${size} out of range`);
    this.size = size;
    this.#words = new Uint32Array(Math.ceil(size / 32));
  }

  get used(): number {
    return this.#used;
  }

  has(slot: number): boolean {
    return (this.#words[slot >>> 5]! & (1 << (slot & 31))) !== 0;
  }

  take(slot: number): boolean {
    const w = slot >>> 5;
    const bit = 1 << (slot & 31);
    const word = this.#words[w]!;
    if (word & bit) return false;
    this.#words[w] = word | bit;
    this.#used++;
    return true;
  }

  free(slot: number): boolean {
    const w = slot >>> 5;
    const bit = 1 << (slot & 31);
    const word = this.#words[w]!;
    if (!(word & bit)) return false;
    this.#words[w] = word & ~bit;
    this.#used--;
    return true;
  }

  resume(slot: number): void {
    this.#cursor = slot;
  }

  unnext(slot: number): void {
    this.free(slot);
    if (this.#cursor === slot) this.#cursor = this.#previous;
  }

  *taken(): Iterable<number> {
    const words = this.#words;
    for (let w = 0; w < words.length; w++) {
      let word = words[w]!;
      while (word !== 0) {
        const low = word & -word;
        yield w * 32 + 31 - Math.clz32(low);
        word = (word & ~low) >>> 0;
      }
    }
  }

  next(lo: number, hi: number): number | undefined {
    let start = this.#cursor + 1;
    if (start < lo || start > hi) start = lo;
    const slot = this.#findFree(start, hi) ?? (start > lo ? this.#findFree(lo, start - 1) : undefined);
    if (slot === undefined) return undefined;
    this.take(slot);
    this.#previous = this.#cursor;
    this.#cursor = slot;
    return slot;
  }

  /** The first free slot in [from, to]. */
  #findFree(from: number, to: number): number | undefined {
    const words = this.#words;
    const lastWord = to >>> 5;
    let w = from >>> 5;
    // The first word may start mid-way: mask off the slots before `from`.
    let word = words[w]! | ((1 << (from & 31)) - 1) | 0;
    for (;;) {
      if (word !== FULL) {
        // The lowest zero bit: ~word & (word + 1) isolates it; clz32 finds its index.
        const inv = ~word >>> 0;
        const bit = 31 - Math.clz32(inv & -inv);
        const slot = w * 32 + bit;
        return slot <= to ? slot : undefined;
      }
      if (++w > lastWord) return undefined;
      word = words[w]! | 0;
    }
  }
}
