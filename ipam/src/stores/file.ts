import { open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { IpamError } from '../errors.js';
import { KvState } from './kv-state.js';
import type { Store, StoreEntry, StoreOp, StoreResult } from './types.js';

const FORMAT = 'cnmd-store';
const VERSION = 1;

interface Waiter {
  results: StoreResult[];
  resolve: (r: StoreResult[]) => void;
  reject: (e: unknown) => void;
}

/**
 * A store in one JSON file, for a single host. Every flush writes the whole state to a temp
 * file, fsyncs it, renames it over the old one and fsyncs the directory, so the file is always
 * either the old state or the new one. Commits made while a flush is under way wait for the
 * next one: a burst of allocations costs a few fsyncs, yet none is acknowledged before it is
 * on disk. A `<path>.lock` file keeps a second process from using the same file.
 */
export class FileStore implements Store {
  readonly path: string;
  #state = new KvState();
  #waiting: Waiter[] = [];
  #flushing: Promise<void> | undefined;
  #scheduled = false;
  #closed = false;

  private constructor(path: string) {
    this.path = path;
  }

  /** Opens (or creates) the store at `path`; refuses a corrupt or newer-format file. */
  static async open(path: string): Promise<FileStore> {
    const store = new FileStore(path);
    await lock(`${path}.lock`);
    try {
      await store.#load();
    } catch (err) {
      await rm(`${path}.lock`, { force: true });
      throw err;
    }
    return store;
  }

  async #load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new IpamError('IPAM_STORE_IO', `cannot read ${this.path}`, { cause: err });
    }
    const { entries, revision } = parse(this.path, text);
    this.#state.load(entries, revision);
  }

  async list(prefix: string): Promise<StoreEntry[]> {
    return this.#state.list(prefix);
  }

  commit(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    if (this.#closed) return Promise.reject(new IpamError('IPAM_STORE_CLOSED', 'the store is closed'));
    const results = this.#state.apply(ops, true);
    if (results.every((r) => r === 'conflict')) return Promise.resolve(results);
    return new Promise((resolve, reject) => {
      this.#waiting.push({ results, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#flushing || this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate lets every commit of the current burst join this flush.
    setImmediate(() => {
      this.#scheduled = false;
      this.#flushing = this.#flush().finally(() => {
        this.#flushing = undefined;
        if (this.#waiting.length > 0) this.#schedule();
      });
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#waiting;
    this.#waiting = [];
    const count = this.#state.pending;
    try {
      await writeAtomically(this.path, serialize(this.#state));
    } catch (cause) {
      // Nothing of this batch nor of the commits queued behind it (which may build on it) is
      // durable: take all of it back and fail every one of them.
      this.#state.rollback();
      const failed = [...batch, ...this.#waiting];
      this.#waiting = [];
      const err = new IpamError('IPAM_STORE_IO', `cannot write ${this.path}`, { cause });
      for (const w of failed) w.reject(err);
      return;
    }
    this.#state.settle(count);
    for (const w of batch) w.resolve(w.results);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#flushing || this.#scheduled) await (this.#flushing ?? new Promise((r) => setImmediate(r)));
    await rm(`${this.path}.lock`, { force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function serialize(state: KvState): string {
  const entries: [string, number, string][] = [];
  for (const e of state.entries.values()) entries.push([e.key, e.revision, e.value]);
  return JSON.stringify({ format: FORMAT, version: VERSION, revision: state.revision, entries });
}

function parse(path: string, text: string): { entries: StoreEntry[]; revision: number } {
  const corrupt = (why: string, cause?: unknown) =>
    new IpamError('IPAM_STORE_CORRUPT', `${path} is not a valid cnmd store (${why}); refusing to start empty`, {
      cause,
    });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw corrupt('not JSON', err);
  }
  if (typeof doc !== 'object' || doc === null) throw corrupt('not an object');
  const d = doc as Record<string, unknown>;
  if (d.format !== FORMAT) throw corrupt(`format is ${JSON.stringify(d.format)}`);
  if (typeof d.version !== 'number' || !Number.isInteger(d.version)) throw corrupt('no version');
  if (d.version > VERSION) {
    throw new IpamError(
      'IPAM_STORE_VERSION',
      `${path} has format version ${d.version}, newer than this cnmd understands (${VERSION}): upgrade cnmd`,
    );
  }
  if (typeof d.revision !== 'number' || !Number.isSafeInteger(d.revision)) throw corrupt('no revision');
  if (!Array.isArray(d.entries)) throw corrupt('no entries');
  const entries: StoreEntry[] = [];
  const seen = new Set<string>();
  for (const e of d.entries as unknown[]) {
    if (
      !Array.isArray(e) ||
      e.length !== 3 ||
      typeof e[0] !== 'string' ||
      !Number.isSafeInteger(e[1]) ||
      e[1] > d.revision ||
      typeof e[2] !== 'string' ||
      seen.has(e[0])
    ) {
      throw corrupt(`bad entry ${JSON.stringify(e)?.slice(0, 80)}`);
    }
    seen.add(e[0]);
    entries.push({ key: e[0], revision: e[1], value: e[2] });
  }
  return { entries, revision: d.revision };
}

async function writeAtomically(path: string, data: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  // The rename is durable only once the directory is.
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

// The lock file names its holder by pid and boot id, so a lock left by a process that is gone,
// or by a previous boot (its pid may be reused now), is taken over.
async function lock(lockPath: string): Promise<void> {
  const me = `${process.pid} ${await bootId()}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockPath, me, { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new IpamError('IPAM_STORE_IO', `cannot create ${lockPath}`, { cause: err });
      }
    }
    const [pid, boot] = (await readFile(lockPath, 'utf8').catch(() => '')).trim().split(' ');
    const holder = Number.parseInt(pid ?? '', 10);
    if (holder > 0 && boot === (await bootId()) && alive(holder)) {
      throw new IpamError('IPAM_STORE_LOCKED', `${lockPath} is held by process ${holder}: is another cnmd running?`);
    }
    await rm(lockPath, { force: true });
  }
  throw new IpamError('IPAM_STORE_LOCKED', `cannot take ${lockPath}`);
}

async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '-')).trim();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
