import type { StoreEntry, StoreOp, StoreResult } from './types.js';

/** One applied write: what it replaced and what it wrote (undefined: a delete). */
export interface Change {
  key: string;
  revision: number;
  previous: StoreEntry | undefined;
  next: StoreEntry | undefined;
}

/**
 * The in-memory key-value state behind the memory and file stores: conditional writes,
 * revisions, and an undo log so that writes which could not be made durable are taken back.
 */
export class KvState {
  readonly entries = new Map<string, StoreEntry>();
  revision = 0;
  #undo: Change[] = [];

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
      const next = op.op === 'delete' ? undefined : { key: op.key, value: op.value, revision };
      if (keepUndo) this.#undo.push({ key: op.key, revision, previous: cur, next });
      if (next) this.entries.set(op.key, next);
      else this.entries.delete(op.key);
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

  /** The first `count` pending writes, oldest first: what a journal must record. */
  changes(count: number): Change[] {
    return this.#undo.slice(0, count);
  }

  /** Takes back every write not yet settled, newest first. */
  rollback(): void {
    this.#undo = KvState.#unwind(this.entries, this.#undo);
  }

  /** The entries without the writes not yet settled (what is on disk), and their revision. */
  settled(): { entries: Map<string, StoreEntry>; revision: number } {
    const entries = new Map(this.entries);
    KvState.#unwind(entries, this.#undo);
    return { entries, revision: this.#undo[0] ? this.#undo[0].revision - 1 : this.revision };
  }

  static #unwind(entries: Map<string, StoreEntry>, undo: Change[]): Change[] {
    for (let i = undo.length - 1; i >= 0; i--) {
      const { key, previous } = undo[i]!;
      if (previous) entries.set(key, previous);
      else entries.delete(key);
    }
    return [];
  }
}
