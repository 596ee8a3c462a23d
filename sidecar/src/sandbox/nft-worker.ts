// nftables scripts for sandboxes, run by a long-lived child process through libnftables.
//
// Why a child: libnftables waits on its netlink socket with select(2), which cannot watch an fd
// above 1023 (glibc aborts the process). A daemon serving 1,000 sandboxes holds thousands of
// sockets, so the socket libnftables opens in the daemon would be such an fd. The child's fd
// table stays tiny, and one process serves every call, so no process is spawned per attach.
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SidecarError } from '../errors.js';

interface Pending {
  resolve: () => void;
  reject: (e: Error) => void;
}

export class NftWorker {
  #child: ChildProcess | undefined;
  #pending = new Map<number, Pending>();
  #next = 0;
  #closed = false;

  /** Runs `script` (one transaction) inside the network namespace at `netns`. */
  run(netns: string, script: string): Promise<void> {
    if (this.#closed) return Promise.reject(new SidecarError('SIDECAR_NFT', 'the nft worker is closed'));
    const child = this.#spawn();
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // Only calls in flight keep the process alive: a daemon that awaits one before anything
      // else holds the event loop (reconcile at start, before the API listens) must not exit (13).
      child.channel?.ref();
      child.send({ id, netns, script });
    });
  }

  #spawn(): ChildProcess {
    if (this.#child) return this.#child;
    // Next to this module once built; from src/ (under vitest), the built one in dist/.
    const main = ['./nft-worker-main.js', '../../dist/src/sandbox/nft-worker-main.js']
      .map((p) => fileURLToPath(new URL(p, import.meta.url)))
      .find((f) => existsSync(f));
    if (!main) throw new SidecarError('SIDECAR_NATIVE_MISSING', 'the nft worker is not built: run `npm run build`');
    const child = fork(main, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'json' });
    child.on('message', (m: { id: number; error?: string }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (this.#pending.size === 0) child.channel?.unref();
      if (m.error === undefined) p.resolve();
      else p.reject(new SidecarError('SIDECAR_NFT', m.error));
    });
    child.on('exit', (code, signal) => {
      if (this.#child === child) this.#child = undefined;
      // Calls in flight fail; the next call starts a new worker.
      const err = new SidecarError('SIDECAR_NFT', `the nft worker exited (${signal ?? code})`);
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    });
    child.unref();
    child.channel?.unref();
    this.#child = child;
    return child;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
}
