// The nftables data plane, for kernels without IPVS: the behaviour of IPVS NAT with SNAT
// (DNAT to a backend picked by numgen or jhash, masquerade so replies return through the LB
// sandbox) from a few table-wide maps (nft-script.ts). Each apply is one `nft -f -`
// transaction holding only the difference from what the table holds; the held state is
// replaced only once nft took the transaction, so a refused change changes nothing anywhere.
// Drain: a backend of weight 0 leaves the slots (no new connections) while conntrack keeps
// its established flows going to it, as IPVS's weight 0 does.

import { LbError } from '../errors.js';
import { type Exec, execIn, spawnIn } from '../exec.js';
import type { ApplyHint, ApplyResult, DataPlane, VirtualService } from '../types.js';
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
/** A first sync of more services than this is written to nft while it is being made (below). */
const STREAM_MIN = 2000;
const STREAM_SLICE = 1000;

export class NftablesDataPlane implements DataPlane, AsyncDisposable {
  readonly name = 'nftables' as const;
  readonly #exec: Exec;
  readonly #netns: string | undefined;
  readonly #custom: boolean;
  readonly #session: NftSession | undefined;
  /** What the table holds; undefined until read from the kernel (a restart resyncs by difference). */
  #held: Held | undefined;
  /** #held is what the last apply() was given: a hint (ApplyHint) is trusted. Not after a failure,
   * after which the caller's idea of what it last applied may not be this one's. */
  #trusted = false;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: NftablesDataPlaneOptions = {}) {
    this.#exec = options.exec ?? execIn(options.netns);
    this.#netns = options.netns;
    this.#custom = options.exec !== undefined;
    if (!options.exec) this.#session = new NftSession(options.netns);
  }

  apply(desired: readonly VirtualService[], hint?: ApplyHint): Promise<ApplyResult> {
    return this.#serial(async () => {
      const trusted = this.#trusted;
      this.#trusted = false; // until this apply is through
      // No table yet: the skeleton goes in the same transaction as the first services.
      const found = this.#held ?? (await this.#list());
      if (!this.#custom && desired.length >= STREAM_MIN && (found?.services.size ?? 0) === 0) {
        return this.#streamed(found, desired);
      }
      const held = found ?? emptyHeld();
      // with a hint, only what it names (O(change)), unless it does not add up to `desired`
      let d = hint && trusted && found ? diff(held, hint.changed, { removed: hint.removed }) : undefined;
      if (d?.size !== desired.length) d = diff(held, desired);
      const lines = found ? d.lines : [...skeleton(), ...d.lines];
      if (lines.length > 0) await this.#nft(lines);
      d.commit(held);
      this.#held = held;
      this.#trusted = true;
      return { added: d.added, changed: d.changed, removed: d.removed };
    });
  }

  /**
   * A first sync of many services (a start, a restart on an empty table): the script goes to
   * `nft -f -` a slice of services at a time, so that nft parses one slice while the next is
   * made (nft reads its input as it comes and applies all of it as one transaction at the end).
   * Only from an empty table: then no key is deleted, and the order of the slices cannot matter.
   */
  async #streamed(found: Held | undefined, desired: readonly VirtualService[]): Promise<ApplyResult> {
    const child = spawnIn(this.#netns, 'nft', ['-f', '-']);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin?.on('error', () => {}); // nft exits early on a bad script: its exit code tells
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => resolve(code));
    });
    // A state of its own, this.#held only once nft took it all; the chains that exist stay known.
    const held: Held = { services: new Map(), chains: new Set(found?.chains) };
    const r: ApplyResult = { added: 0, changed: 0, removed: 0 };
    const write = async (lines: string[]) => {
      if (lines.length === 0) return;
      if (!child.stdin?.write(script(lines))) await new Promise((res) => child.stdin?.once('drain', res));
    };
    if (!found) await write(skeleton());
    for (let i = 0; i < desired.length; i += STREAM_SLICE) {
      const d = diff(held, desired.slice(i, i + STREAM_SLICE), { keepAbsent: true });
      d.commit(held);
      r.added += d.added;
      await write(d.lines);
      await new Promise((res) => setImmediate(res)); // let the pipe flush while the next slice is made
    }
    child.stdin?.end();
    const code = await exited.catch((e: Error) => {
      stderr ||= e.message;
      return -1;
    });
    if (code !== 0) {
      throw new LbError('LB_NFT', `nft refused the transaction: nft -f -: ${stderr.trim() || `exit ${code}`}`);
    }
    this.#held = held;
    this.#trusted = true;
    return r;
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
