import type { UpstreamMessage } from './upstream/raw-message.js';

// Forwarded answers, kept for their TTL (capped), the least recently used going first when full.
// Negative answers stay for their SOA's negative TTL (RFC 2308 section 5). Table answers never
// come here: they change with the table, not with time.

export interface CacheHit {
  message: UpstreamMessage;
  /** Whole seconds since it was received. */
  age: number;
}

interface Entry {
  message: UpstreamMessage;
  stored: number;
  expires: number;
}

export class AnswerCache {
  readonly #entries = new Map<string, Entry>();
  readonly #size: number;
  readonly #maxTtl: number;
  readonly #now: () => number;
  /** Lookups answered from here, and lookups that found nothing fresh (for metrics). */
  hits = 0;
  misses = 0;

  /** size: entries kept; maxTtl: seconds; now: a clock in ms (tests pass their own). */
  constructor(size: number, maxTtl: number, now: () => number = Date.now) {
    this.#size = size;
    this.#maxTtl = maxTtl;
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): CacheHit | undefined {
    const e = this.#entries.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    const now = this.#now();
    if (now >= e.expires) {
      this.#entries.delete(key);
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Map order is insertion order: moving the entry to the end keeps the LRU one first.
    this.#entries.delete(key);
    this.#entries.set(key, e);
    return { message: e.message, age: Math.floor((now - e.stored) / 1000) };
  }

  /** Keeps a message if its TTL allows (message.ttl > 0); returns whether it did. */
  set(key: string, message: UpstreamMessage): boolean {
    const ttl = Math.min(message.ttl, this.#maxTtl);
    if (ttl <= 0 || this.#size <= 0) return false;
    const now = this.#now();
    this.#entries.delete(key);
    this.#entries.set(key, { message, stored: now, expires: now + ttl * 1000 });
    while (this.#entries.size > this.#size) this.#entries.delete(this.#entries.keys().next().value!);
    return true;
  }

  clear(): void {
    this.#entries.clear();
  }
}
