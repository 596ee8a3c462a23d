// The allocator a first attempt would write: a Set of address strings and a scan for the next
// free one, recording each change in the same kind of store as Ipam. Measured beside Ipam in
// the same run so the figures have a peer.

import { formatIp4, parseIp4 } from '@cnmd/netutil';
import { MemoryStore } from '../src/index.js';

export class NaivePool {
  #held = new Set<string>();
  #store = new MemoryStore();
  #first: number;
  #last: number;

  constructor(subnet: string) {
    const [base, len] = subnet.split('/') as [string, string];
    this.#first = parseIp4(base) + 1;
    this.#last = parseIp4(base) + 2 ** (32 - Number(len)) - 2;
  }

  async request(): Promise<string> {
    for (let n = this.#first; n <= this.#last; n++) {
      const a = formatIp4(n);
      if (!this.#held.has(a)) {
        this.#held.add(a);
        await this.#store.commit([{ op: 'create', key: `addr/naive/${a}`, value: '' }]);
        return a;
      }
    }
    throw new Error('exhausted');
  }

  async release(a: string): Promise<void> {
    await this.#store.commit([{ op: 'delete', key: `addr/naive/${a}` }]);
    this.#held.delete(a);
  }
}
