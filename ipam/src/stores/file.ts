import { createHash } from 'node:crypto';
import { type FileHandle, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { IpamError } from '../errors.js';
import { type Change, KvState } from './kv-state.js';
import type { Store, StoreEntry, StoreOp, StoreResult } from './types.js';

const FORMAT = 'cnmd-store';
const VERSION = 1;

interface Waiter {
  results: StoreResult[];
  resolve: (r: StoreResult[]) => void;
  reject: (e: unknown) => void;
}

/** The journal is folded into the snapshot once it is this large and larger than the snapshot. */
const COMPACT_BYTES = 1024 * 1024;

/**
 * A store in two files, for a single host: a snapshot (`<path>`, JSON) and a journal
 * (`<path>.log`) of the writes since. A flush appends the writes of every commit made since
 * the last one as one checksummed line and fsyncs it, so a burst of allocations costs a few
 * small writes, yet none is acknowledged before it is on disk, and the cost of a write does
 * not grow with the state. When the journal outgrows the snapshot, a new snapshot is written
 * atomically (temp file, fsync, rename, fsync of the directory) and the journal emptied. A
 * torn last line (a crash mid-append: never acknowledged) is dropped on open; damage anywhere
 * else is refused. A `<path>.lock` file keeps a second process from using the same files.
 */
export class FileStore implements Store {
  readonly path: string;
  #state = new KvState();
  #waiting: Waiter[] = [];
  #flushing: Promise<void> | undefined;
  #scheduled = false;
  #closed = false;
  #log: FileHandle | undefined;
  #logSize = 0;
  #snapshotSize = 0;
  #broken: IpamError | undefined;

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
      await store.#log?.close();
      await rm(`${path}.lock`, { force: true });
      throw err;
    }
    return store;
  }

  async #load(): Promise<void> {
    let text: string | undefined;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new IpamError('IPAM_STORE_IO', `cannot read ${this.path}`, { cause: err });
      }
    }
    if (text !== undefined) {
      const { entries, revision } = parse(this.path, text);
      this.#state.load(entries, revision);
      this.#snapshotSize = text.length;
    }
    const logPath = `${this.path}.log`;
    const log = await readFile(logPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return Buffer.alloc(0);
      throw new IpamError('IPAM_STORE_IO', `cannot read ${logPath}`, { cause: err });
    });
    const good = replay(logPath, log, this.#state);
    this.#log = await open(logPath, 'a+', 0o600);
    if (good < log.length) {
      // A torn last line: a flush that never completed, so never acknowledged.
      await this.#log.truncate(good);
      await this.#log.sync();
    }
    this.#logSize = good;
  }

  async list(prefix: string): Promise<StoreEntry[]> {
    return this.#state.list(prefix);
  }

  commit(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    if (this.#closed) return Promise.reject(new IpamError('IPAM_STORE_CLOSED', 'the store is closed'));
    if (this.#broken) return Promise.reject(this.#broken);
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
    const line = journalLine(this.#state.changes(count));
    const log = this.#log!;
    try {
      // writeFile writes all of it or fails: a short write (a nearly full disk) is a failure,
      // never a torn line left in the journal behind an acknowledged flush.
      await log.writeFile(line);
      await log.datasync();
    } catch (cause) {
      // Nothing of this batch nor of the commits queued behind it (which may build on it) is
      // durable: take all of it back, cut what was appended, and fail every one of them.
      this.#state.rollback();
      const failed = [...batch, ...this.#waiting];
      this.#waiting = [];
      const err = new IpamError('IPAM_STORE_IO', `cannot write ${this.path}.log`, { cause });
      try {
        await log.truncate(this.#logSize);
      } catch {
        this.#broken = err; // a torn line may sit in the middle now: write nothing more
      }
      for (const w of failed) w.reject(err);
      return;
    }
    this.#logSize += Buffer.byteLength(line);
    this.#state.settle(count);
    for (const w of batch) w.resolve(w.results);
    if (this.#logSize > COMPACT_BYTES && this.#logSize > this.#snapshotSize) await this.#compact();
  }

  /** Folds the journal into a new snapshot. A failure leaves both as they were: still good. */
  async #compact(): Promise<void> {
    const { entries, revision } = this.#state.settled();
    const text = serialize(entries.values(), revision);
    try {
      await writeAtomically(this.path, text);
      await this.#log!.truncate(0);
      await this.#log!.sync();
      this.#logSize = 0;
      this.#snapshotSize = text.length;
    } catch {
      // The old snapshot and the journal still hold everything; try again at the next flush.
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#flushing || this.#scheduled) await (this.#flushing ?? new Promise((r) => setImmediate(r)));
    await this.#log?.close();
    await rm(`${this.path}.lock`, { force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** One line of the journal: a checksum, then the writes as [key, revision, value or null]. */
function journalLine(changes: readonly Change[]): string {
  const json = JSON.stringify(changes.map((c) => [c.key, c.revision, c.next ? c.next.value : null]));
  return `${checksum(json)} ${json}\n`;
}

function checksum(text: string): string {
  return createHash('sha1').update(text).digest('hex').slice(0, 12);
}

/** Applies the journal's writes newer than the snapshot; returns how many bytes were good. */
function replay(path: string, log: Buffer, state: KvState): number {
  let at = 0;
  while (at < log.length) {
    const end = log.indexOf(10, at);
    const line = log.toString('utf8', at, end < 0 ? log.length : end);
    const ok = end >= 0 && checksum(line.slice(13)) === line.slice(0, 12) && line[12] === ' ';
    if (!ok) {
      if (end < 0 || end === log.length - 1) return at; // the torn tail of a flush that failed
      throw new IpamError(
        'IPAM_STORE_CORRUPT',
        `${path}: a damaged line at byte ${at}; refusing to start from part of it`,
      );
    }
    for (const [key, revision, value] of JSON.parse(line.slice(13)) as [string, number, string | null][]) {
      if (revision <= state.revision) continue; // already in the snapshot
      if (value === null) state.entries.delete(key);
      else state.entries.set(key, { key, value, revision });
      state.revision = revision;
    }
    at = end + 1;
  }
  return at;
}

function serialize(all: Iterable<StoreEntry>, revision: number): string {
  const entries: [string, number, string][] = [];
  for (const e of all) entries.push([e.key, e.revision, e.value]);
  return JSON.stringify({ format: FORMAT, version: VERSION, revision, entries });
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
