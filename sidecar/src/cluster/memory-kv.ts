// Buckets in memory, with JetStream KV's semantics (one revision sequence per bucket, CAS on a
// key's revision, watches that deliver the current values and then every change in order): for
// unit tests and the model test of the cluster's views, with a switch to play an outage.
import { SidecarError } from '../errors.js';
import type { Bucket, Buckets, KvChange, KvEntry, KvWatch } from './kv.js';

export class MemoryBucket implements Bucket {
  readonly name: string;
  readonly #values = new Map<string, KvEntry>();
  readonly #watchers = new Set<(c: KvChange) => void>();
  #revision = 0;
  readonly #queue: KvChange[] = [];
  #emitting = false;
  /** While false, every call fails as an unreachable NATS would (SIDECAR_CLUSTER_UNAVAILABLE). */
  up = true;

  constructor(name: string) {
    this.name = name;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.#check();
    return this.#values.get(key);
  }

  async create(key: string, value: string): Promise<number | 'conflict'> {
    this.#check();
    if (this.#values.has(key)) return 'conflict';
    return this.#write(key, value);
  }

  async update(key: string, value: string, revision: number): Promise<number | 'conflict'> {
    this.#check();
    if (this.#values.get(key)?.revision !== revision) return 'conflict';
    return this.#write(key, value);
  }

  async delete(key: string, revision?: number): Promise<'ok' | 'conflict'> {
    this.#check();
    const cur = this.#values.get(key);
    if (revision !== undefined && cur?.revision !== revision) return 'conflict';
    if (!cur) return 'ok';
    this.#values.delete(key);
    this.#emit({ key, value: undefined, revision: ++this.#revision });
    return 'ok';
  }

  async watch(onChange: (c: KvChange) => void, onSnapshot: () => void): Promise<KvWatch> {
    this.#check();
    for (const e of [...this.#values.values()].sort((a, b) => a.revision - b.revision)) onChange({ ...e });
    onSnapshot();
    this.#watchers.add(onChange);
    return { stop: () => this.#watchers.delete(onChange) };
  }

  /** Every value, for tests. */
  entries(): KvEntry[] {
    return [...this.#values.values()];
  }

  /** Drops every watch, as a broken connection does. */
  dropWatches(): void {
    this.#watchers.clear();
  }

  #write(key: string, value: string): number {
    const e = { key, value, revision: ++this.#revision };
    this.#values.set(key, e);
    this.#emit({ ...e });
    return e.revision;
  }

  /** In revision order to every watcher, even when a watcher writes while told (as a host's
   * view does): that write's change waits until this one has reached them all. */
  #emit(c: KvChange): void {
    this.#queue.push(c);
    if (this.#emitting) return;
    this.#emitting = true;
    try {
      for (let next = this.#queue.shift(); next; next = this.#queue.shift()) {
        for (const w of [...this.#watchers]) w({ ...next });
      }
    } finally {
      this.#emitting = false;
    }
  }

  #check(): void {
    if (!this.up) throw new SidecarError('SIDECAR_CLUSTER_UNAVAILABLE', `${this.name}: no connection`);
  }
}

export function memoryBuckets(): Buckets & { all: MemoryBucket[] } {
  const b = {
    networks: new MemoryBucket('cnmd_networks'),
    endpoints: new MemoryBucket('cnmd_endpoints'),
    services: new MemoryBucket('cnmd_services'),
    hosts: new MemoryBucket('cnmd_hosts'),
    ipam: new MemoryBucket('cnmd_ipam'),
    keys: new MemoryBucket('cnmd_keys'),
  };
  return { ...b, all: Object.values(b) };
}
