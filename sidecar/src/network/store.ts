// The sidecar's records (networks, endpoints) in the same store as IPAM's allocations, under
// `cnmd/`: one file, one lock, one atomic write for both. Each record remembers its revision
// so that an update is conditional, as the store's contract asks.
import type { Store } from '@cnmd/ipam';
import { SidecarError } from '../errors.js';

export class Records<T extends { id: string }> {
  readonly #store: Store;
  readonly #prefix: string;
  readonly #items = new Map<string, { value: T; revision: number }>();

  constructor(store: Store, kind: string) {
    this.#store = store;
    this.#prefix = `cnmd/${kind}/`;
  }

  async load(): Promise<T[]> {
    for (const e of await this.#store.list(this.#prefix)) {
      try {
        this.#items.set(e.key.slice(this.#prefix.length), { value: JSON.parse(e.value) as T, revision: e.revision });
      } catch (cause) {
        throw new SidecarError('SIDECAR_STATE_CORRUPT', `record ${e.key} is not JSON`, { cause });
      }
    }
    return this.all();
  }

  all(): T[] {
    return [...this.#items.values()].map((i) => i.value);
  }

  get(id: string): T | undefined {
    return this.#items.get(id)?.value;
  }

  /** Creates or replaces a record; durable when resolved. */
  async put(value: T): Promise<void> {
    const cur = this.#items.get(value.id);
    const key = this.#prefix + value.id;
    const op = cur
      ? ({ op: 'update', key, value: JSON.stringify(value), revision: cur.revision } as const)
      : ({ op: 'create', key, value: JSON.stringify(value) } as const);
    const [r] = await this.#store.commit([op]);
    if (r === 'conflict') throw new SidecarError('SIDECAR_STATE_CONFLICT', `record ${key} changed under this daemon`);
    this.#items.set(value.id, { value, revision: r as number });
  }

  async delete(id: string): Promise<void> {
    if (!this.#items.has(id)) return;
    await this.#store.commit([{ op: 'delete', key: this.#prefix + id }]);
    this.#items.delete(id);
  }
}
