// The contract between Ipam and where its state lives. It is shaped like a key-value bucket
// with a revision per key and conditional writes (NATS JetStream KV, etcd), so a cluster store
// slots in without changing Ipam: an allocation is a `create` that fails when another writer
// got there first.

export interface StoreEntry {
  readonly key: string;
  readonly value: string;
  /** Increases with every write to the store; a key's revision is that of its last write. */
  readonly revision: number;
}

export type StoreOp =
  /** Write `key` only if it does not exist. */
  | { readonly op: 'create'; readonly key: string; readonly value: string }
  /** Write `key` only if its revision is still `revision`. */
  | { readonly op: 'update'; readonly key: string; readonly value: string; readonly revision: number }
  /** Delete `key` (only at `revision`, when given); deleting a missing key succeeds. */
  | { readonly op: 'delete'; readonly key: string; readonly revision?: number };

/** Per op: the new revision, or 'conflict' when its condition did not hold. */
export type StoreResult = number | 'conflict';

export interface Store {
  /** Every entry whose key starts with `prefix`. */
  list(prefix: string): Promise<StoreEntry[]>;
  /**
   * Applies ops in order, each on its own (a conflict fails that op alone). Resolves only
   * once every successful op is durable; rejects (and applies nothing) when it cannot be.
   */
  commit(ops: readonly StoreOp[]): Promise<StoreResult[]>;
  close(): Promise<void>;
}
