/**
 * A set of slots [0, size) handed out one at a time. `next` continues after the slot it handed
 * out last and wraps around (libnetwork's serial allocation), so a slot just released is not
 * handed out again at once.
 */
export interface SlotAllocator<K extends number | bigint> {
  readonly size: K;
  /** Slots taken. */
  readonly used: number;
  has(slot: K): boolean;
  /** Takes `slot`; false when it was taken already. */
  take(slot: K): boolean;
  /** Frees `slot`; false when it was free. */
  free(slot: K): boolean;
  /** Continues `next` after this slot (the last one handed out, after a restart). */
  resume(slot: K): void;
  /** Undoes `next`: frees the slot it handed out and, if nothing moved on since, its cursor. */
  unnext(slot: K): void;
  /** The taken slots, in ascending order. */
  taken(): Iterable<K>;
  /** Takes the next free slot in [lo, hi]; undefined when there is none. */
  next(lo: K, hi: K): K | undefined;
}
