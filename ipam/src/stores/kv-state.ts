import type { StoreEntry, StoreOp, StoreResult } from './types.js';

type Undo = [key: string, previous: StoreEntry | undefined];

/**
 * The in-memory key-value state behind the memory and file stores: conditional writes,
 * revisions, and an undo log so that writes which could not be made durable are taken back.
 */
export class KvState {
  readonly entries = new Map<string, StoreEntry>();
  revision = 0;
  #undo: Undo[] = [];

  load(entries: Iterable<StoreEntry>, revision: number): void {
    for (const e of entries) this.entries.set(e.key, e);
    this.revision = revision;
  }

  list(prefix: string): StoreEntry[] {
    const out: StoreEntry[] = [];
    for (const e of this.entries.values()) if (e.key.startsWith(prefix)) out.push(e);
    return out;
  }

  apply(ops: readonly StoreOp[], keepUndo: boolean): StoreResult[] {
    const results: StoreResult[] = new Array(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const cur = this.entries.get(op.key);
      const ok =
        op.op === 'create'
          ? cur === undefined
          : op.op === 'update'
            ? cur !== undefined && cur.revision === op.revision
            : op.revision === undefined || cur?.revision === op.revision;
      if (!ok) {
        results[i] = 'conflict';
        continue;
      }
      const revision = ++this.revision;
      if (keepUndo) this.#undo.push([op.key, cur]);
      if (op.op === 'delete') this.entries.delete(op.key);
      else this.entries.set(op.key, { key: op.key, value: op.value, revision });
      results[i] = revision;
    }
    return results;
  }

  /** Writes applied but not yet settled. */
  get pending(): number {
    return this.#undo.length;
  }

  /** The first `count` pending writes are durable: they can no longer be taken back. */
  settle(count: number): void {
    this.#undo.splice(0, count);
  }

  /** Takes back every write not yet settled, newest first. */
  rollback(): void {
    for (let i = this.#undo.length - 1; i >= 0; i--) {
      const [key, prev] = this.#undo[i]!;
      if (prev) this.entries.set(key, prev);
      else this.entries.delete(key);
    }
    this.#undo = [];
  }
}
