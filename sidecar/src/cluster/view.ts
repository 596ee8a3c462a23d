// What this host knows of the cluster: the decoded values of each bucket, kept from a watch.
// A watch starts with the bucket's current values (a snapshot) and goes on with each change; a
// restarted watch (after a reconnect) sends a new snapshot, and only what differs from the view
// is told on (a value that came, changed or went), so a resync costs what changed, not a
// rebuild. A value that does not decode is refused: told once per revision, and the view keeps
// what it had for the key (a buggy peer's write cannot remove what was good).
import type { KvChange } from './kv.js';
import type { Refusal } from './records.js';

export interface Held<T> {
  value: T;
  revision: number;
}

export type Decoder<T> = (key: string, text: string) => T | Refusal;

export interface ViewEvents<T> {
  /** A value came or changed (`old` is what it replaced), or went (`value` undefined). */
  change(key: string, value: T | undefined, old: T | undefined): void;
  refused(key: string, why: string): void;
}

export class BucketView<T> {
  readonly #decode: Decoder<T>;
  readonly #on: ViewEvents<T>;
  readonly #held = new Map<string, Held<T> & { text: string }>();
  /** Keys seen since a snapshot began; undefined outside one. */
  #seen: Set<string> | undefined;
  /** Refused key → revision, so each bad write is told once. */
  readonly #refused = new Map<string, number>();

  constructor(decode: Decoder<T>, on: ViewEvents<T>) {
    this.#decode = decode;
    this.#on = on;
  }

  /** Changes told so far (came, changed, went): a resync tells how many it found. */
  changes = 0;

  get size(): number {
    return this.#held.size;
  }

  get(key: string): T | undefined {
    return this.#held.get(key)?.value;
  }

  revision(key: string): number | undefined {
    return this.#held.get(key)?.revision;
  }

  /** The text the value was decoded from, as written. */
  text(key: string): string | undefined {
    return this.#held.get(key)?.text;
  }

  entries(): IterableIterator<[string, Held<T>]> {
    return this.#held.entries();
  }

  values(): T[] {
    return [...this.#held.values()].map((h) => h.value);
  }

  /** A watch (re)starts: what its snapshot does not hold is gone when it ends. */
  beginSnapshot(): void {
    this.#seen = new Set();
  }

  endSnapshot(): void {
    const seen = this.#seen;
    this.#seen = undefined;
    if (!seen) return;
    for (const key of [...this.#held.keys()]) if (!seen.has(key)) this.#remove(key);
  }

  apply(c: KvChange): void {
    this.#seen?.add(c.key);
    if (c.value === undefined) {
      this.#refused.delete(c.key);
      this.#remove(c.key);
      return;
    }
    const had = this.#held.get(c.key);
    if (had?.text === c.value) {
      had.revision = c.revision;
      return;
    }
    const v = this.#decode(c.key, c.value);
    if (typeof v === 'object' && v !== null && 'error' in v) {
      if (this.#refused.get(c.key) !== c.revision) {
        this.#refused.set(c.key, c.revision);
        this.#on.refused(c.key, (v as Refusal).error);
      }
      return;
    }
    this.#refused.delete(c.key);
    this.#held.set(c.key, { value: v as T, revision: c.revision, text: c.value });
    this.changes++;
    this.#on.change(c.key, v as T, had?.value);
  }

  #remove(key: string): void {
    const had = this.#held.get(key);
    if (!had) return;
    this.#held.delete(key);
    this.changes++;
    this.#on.change(key, undefined, had.value);
  }
}
