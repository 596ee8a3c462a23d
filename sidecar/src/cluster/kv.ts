// The cluster's key-value buckets as the rest of cluster/ uses them: get, compare-and-set writes
// and a watch (the current values, then every change). Two implementations: JetStream KV over a
// NATS connection (nats.ts) and memory (memory-kv.ts, for tests and the model test).

export interface KvEntry {
  key: string;
  value: string;
  revision: number;
}

/** A value that appeared or changed (`value`), or went (`value` undefined). */
export interface KvChange {
  key: string;
  value: string | undefined;
  revision: number;
}

export interface KvWatch {
  stop(): void;
}

export interface Bucket {
  readonly name: string;
  get(key: string): Promise<KvEntry | undefined>;
  /** Writes `key` only if it does not exist: its revision, or 'conflict'. */
  create(key: string, value: string): Promise<number | 'conflict'>;
  /** Writes `key` only if its revision is still `revision`. */
  update(key: string, value: string, revision: number): Promise<number | 'conflict'>;
  /** Deletes `key` (only at `revision`, when given); a missing key is deleted already. */
  delete(key: string, revision?: number): Promise<'ok' | 'conflict'>;
  /**
   * Every current value, then `onSnapshot()`, then every change as it happens, until stop().
   * Calls come in the bucket's order. `onEnd` is told when the watch ends by itself (its
   * consumer went with a server): the owner watches again.
   */
  watch(onChange: (c: KvChange) => void, onSnapshot: () => void, onEnd?: () => void): Promise<KvWatch>;
}

/** The buckets of a cluster, one per kind of record. */
export interface Buckets {
  networks: Bucket;
  endpoints: Bucket;
  services: Bucket;
  hosts: Bucket;
  ipam: Bucket;
  keys: Bucket;
}

export const BUCKET_NAMES: Record<keyof Buckets, string> = {
  networks: 'cnmd_networks',
  endpoints: 'cnmd_endpoints',
  services: 'cnmd_services',
  hosts: 'cnmd_hosts',
  ipam: 'cnmd_ipam',
  keys: 'cnmd_keys',
};

/** A put or a delete, retried from a fresh read on conflict, never overwriting blindly. */
export async function casPut(b: Bucket, key: string, value: string, tries = 5): Promise<number> {
  for (let i = 0; i < tries; i++) {
    const cur = await b.get(key);
    if (cur?.value === value) return cur.revision;
    const r = cur ? await b.update(key, value, cur.revision) : await b.create(key, value);
    if (r !== 'conflict') return r;
  }
  throw new Error(`${b.name} ${key}: changed under every one of ${tries} writes`);
}
