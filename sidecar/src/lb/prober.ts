// Health probes from inside a namespace: the load-balancer sandbox, which is joined to the
// network and so reaches every task (bridge or macvlan), where the daemon's own namespace
// may not. setns(2) moves one thread, so a worker thread enters the sandbox once and stays;
// the sockets its event loop makes (connect runs on that thread; an IP literal needs no
// lookup on the threadpool) are the sandbox's. One worker per sandbox, made on first use.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { HealthCheck } from '@cnmd/lb';
import { SidecarError } from '../errors.js';

export class NetnsProber {
  readonly #netns: string;
  #worker: Worker | undefined;
  #pending = new Map<number, (ok: boolean) => void>();
  #next = 0;
  #closed = false;

  /** `netns`: a path of the namespace the probes run in. */
  constructor(netns: string) {
    this.#netns = netns;
  }

  /** lb's HealthProbe: whether `address` answers `check` from inside the namespace. */
  readonly probe = (address: string, check: HealthCheck): Promise<boolean> => {
    if (this.#closed) return Promise.resolve(false);
    const w = this.#spawn();
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      w.postMessage({ id, address, check });
    });
  };

  #spawn(): Worker {
    if (this.#worker) return this.#worker;
    // Next to this module once built; from src/ (under vitest), the built one in dist/.
    const main = ['./prober-main.js', '../../dist/src/lb/prober-main.js']
      .map((p) => fileURLToPath(new URL(p, import.meta.url)))
      .find((f) => existsSync(f));
    if (!main) throw new SidecarError('SIDECAR_NATIVE_MISSING', 'the prober is not built: run `npm run build`');
    const w = new Worker(main, { workerData: { netns: this.#netns } });
    w.on('message', (m: { id: number; ok: boolean }) => {
      this.#pending.get(m.id)?.(m.ok);
      this.#pending.delete(m.id);
    });
    const fail = () => {
      if (this.#worker === w) this.#worker = undefined;
      // Probes in flight fail (the backend counts as down once); the next one starts a worker.
      for (const r of this.#pending.values()) r(false);
      this.#pending.clear();
    };
    w.on('error', fail);
    w.on('exit', fail);
    w.unref();
    this.#worker = w;
    return w;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const w = this.#worker;
    this.#worker = undefined;
    await w?.terminate();
  }
}
