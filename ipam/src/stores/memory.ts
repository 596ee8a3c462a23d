import { IpamError } from '../errors.js';
import { KvState } from './kv-state.js';
import type { Store, StoreEntry, StoreOp, StoreResult } from './types.js';

/** A store that keeps everything in memory: for tests and for state that may be lost. */
export class MemoryStore implements Store {
  #state = new KvState();
  #closed = false;

  async list(prefix: string): Promise<StoreEntry[]> {
    return this.#state.list(prefix);
  }

  commit(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    if (this.#closed) return Promise.reject(new IpamError('IPAM_STORE_CLOSED', 'the store is closed'));
    return Promise.resolve(this.#state.apply(ops, false));
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
