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
import { diff } from './nft-diff.js';
import { parseListing, servicesOf } from './nft-read.js';
import { dropTable, emptyHeld, type Held, script, skeleton, TABLE } from './nft-script.js';
import { NftSession } from './nft-session.js';

export interface NftablesDataPlaneOptions {
  /** The LB sandbox (a /run/netns name or a path); the process's own namespace when absent. */
  netns?: string;
  /** Runs nft for every transaction (`nft -f -`, the script on stdin). By default small
   * transactions go to a long-lived `nft -i` (nft-session.ts) and large ones to `nft -f -`. */
  exec?: Exec;
}

/** Larger transactions go through `nft -f -`: interactive nft reads a long line slowly. */
const SESSION_MAX = 16 * 1024;

export class NftablesDataPlane implements DataPlane, AsyncDisposable {
  readonly name = 'nftables' as const;
  readonly #exec: Exec;
  readonly #session: NftSession | undefined;
  /** What the table holds; undefined until read from the kernel (a restart resyncs by difference). */
  #held: Held | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: NftablesDataPlaneOptions = {}) {
    this.#exec = options.exec ?? execIn(options.netns);
    if (!options.exec) this.#session = new NftSession(options.netns);
  }

  apply(desired: readonly VirtualService[]): Promise<ApplyResult> {
    return this.#serial(async () => {
      // No table yet: the skeleton goes in the same transaction as the first services.
      const found = this.#held ?? (await this.#list());
      const d = diff(found ?? emptyHeld(), desired);
      const lines = found ? d.lines : [...skeleton(), ...d.lines];
      if (lines.length > 0) await this.#nft(lines);
      this.#held = d.next;
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
      this.#session?.close();
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
      const line = this.#session && lines.join('; ');
      if (line && line.length <= SESSION_MAX) await this.#session!.run(line);
      else await this.#exec('nft', ['-f', '-'], script(lines));
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
