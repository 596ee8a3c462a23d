// The nftables data plane, for kernels without IPVS: the behaviour of IPVS NAT with SNAT
// (DNAT to a backend picked by numgen or jhash, masquerade so replies return through the LB
// sandbox) from a few table-wide maps (nft-script.ts). Each apply is one `nft -f -`
// transaction holding only the difference from what the table holds; the held state is
// replaced only once nft took the transaction, so a refused change changes nothing anywhere.
// Drain: a backend of weight 0 leaves the slots (no new connections) while conntrack keeps
// its established flows going to it, as IPVS's weight 0 does.
import { LbError } from '../errors.js';
import { type Exec, execIn } from '../exec.js';
import type { ApplyResult, DataPlane, VirtualService } from '../types.js';
import {
  desiredState,
  diff,
  dropTable,
  emptyHeld,
  type Held,
  parseListing,
  script,
  servicesOf,
  skeleton,
  TABLE,
} from './nft-script.js';

export interface NftablesDataPlaneOptions {
  /** The LB sandbox (a /run/netns name or a path); the process's own namespace when absent. */
  netns?: string;
  /** Runs nft; by default a child process (in `netns` when given). */
  exec?: Exec;
}

export class NftablesDataPlane implements DataPlane, AsyncDisposable {
  readonly name = 'nftables' as const;
  readonly #exec: Exec;
  /** What the table holds; undefined until read from the kernel (a restart resyncs by difference). */
  #held: Held | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: NftablesDataPlaneOptions = {}) {
    this.#exec = options.exec ?? execIn(options.netns);
  }

  apply(desired: readonly VirtualService[]): Promise<ApplyResult> {
    return this.#serial(async () => {
      const held = await this.#load();
      const want = desiredState(desired);
      const d = diff(held, want);
      if (d.lines.length > 0) await this.#nft(d.lines);
      this.#held = want;
      return { added: d.added, changed: d.changed, removed: d.removed };
    });
  }

  read(): Promise<VirtualService[]> {
    return this.#serial(async () => servicesOf((await this.#list()) ?? emptyHeld()));
  }

  reset(): Promise<void> {
    return this.#serial(() => this.#reset());
  }

  close(): Promise<void> {
    // The table stays: the kernel keeps balancing, and the next data plane resyncs by difference.
    return this.#serial(async () => {
      this.#closed = true;
    }, true);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #reset(): Promise<void> {
    // `table` first makes the delete a no-op when there is none (nft(8): add is idempotent).
    await this.#nft(dropTable());
    this.#held = undefined;
  }

  async #load(): Promise<Held> {
    if (this.#held) return this.#held;
    const found = await this.#list();
    if (found) return (this.#held = found);
    await this.#nft(skeleton());
    return (this.#held = emptyHeld());
  }

  async #list(): Promise<Held | undefined> {
    let out: string;
    try {
      out = await this.#exec('nft', ['-j', 'list', 'table', 'inet', TABLE]);
    } catch (err) {
      if (/No such file or directory/.test((err as Error).message)) return undefined;
      throw new LbError('LB_NFT', `nft could not list the table: ${(err as Error).message}`, { cause: err });
    }
    return parseListing(out);
  }

  async #nft(lines: string[]): Promise<void> {
    try {
      await this.#exec('nft', ['-f', '-'], script(lines));
    } catch (cause) {
      throw new LbError('LB_NFT', `nft refused the transaction: ${(cause as Error).message}`, { cause });
    }
  }

  #serial<T>(fn: () => Promise<T>, whenClosed = false): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#closed && !whenClosed) throw new LbError('LB_CLOSED', 'the nftables data plane is closed');
      return fn();
    });
    this.#queue = run.catch(() => {});
    return run;
  }
}
