// What a daemon holds, counted from outside: its records and allocations (a copy of its state
// files opened as the daemon opens them), the links, addresses and nftables rules of its host
// namespace, and its processes (the daemon and every process under it) with their RSS and fds.
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '@cnmd/ipam';
import type { TestHost } from '../daemon-harness.js';

export interface StateNetwork {
  id: string;
  device: string;
  pool4: string;
  subnet: string;
  spec: { name: string };
  state: string;
}
export interface StateEndpoint {
  id: string;
  sandbox: string;
  network: string;
  name?: string;
  ifname: string;
  hostIf: string;
  ip?: string;
  ip6?: string;
  state: string;
  lb?: boolean;
  service?: string;
  publish: { hostPort: number; port: number; proto: string }[];
}
export interface StateService {
  id: string;
  spec: { name: string };
  network: string;
  vip?: string;
  mark?: number;
}

export interface StateView {
  /** Every key of the store, with its value. */
  entries: Map<string, string>;
  networks: StateNetwork[];
  endpoints: StateEndpoint[];
  services: StateService[];
  /** IPAM's address allocations: pool id → addresses. */
  addresses: Map<string, string[]>;
}

/**
 * The daemon's store as it is on disk now: copied, then opened as the daemon would open it. The
 * two files are copied one after the other, so a compaction in between (a new snapshot, the
 * journal emptied) would give a view that never was: the copies are read until two in a row agree.
 */
export async function readState(host: TestHost): Promise<StateView> {
  let last = await readStateOnce(host);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const next = await readStateOnce(host);
    if (same(last.entries, next.entries)) return next;
    last = next;
  }
  throw new Error(`the state of ${host.dir} kept changing`);
}

function same(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

async function readStateOnce(host: TestHost): Promise<StateView> {
  const tmp = await mkdtemp(join(tmpdir(), 'cnmd-rel-state-'));
  try {
    for (const f of ['state.json', 'state.json.log']) {
      await cp(join(host.dir, 'state', f), join(tmp, f)).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
    }
    const store = await FileStore.open(join(tmp, 'state.json'));
    const entries = new Map((await store.list('')).map((e) => [e.key, e.value]));
    await store.close();
    const records = <T>(prefix: string) =>
      [...entries].filter(([k]) => k.startsWith(prefix)).map(([, v]) => JSON.parse(v) as T);
    const addresses = new Map<string, string[]>();
    for (const k of entries.keys()) {
      const m = /^addr\/(.+)\/([^/]+)$/.exec(k);
      if (!m) continue;
      const list = addresses.get(m[1]!) ?? [];
      list.push(m[2]!);
      addresses.set(m[1]!, list);
    }
    return {
      entries,
      networks: records<StateNetwork>('cnmd/net/'),
      endpoints: records<StateEndpoint>('cnmd/ep/'),
      services: records<StateService>('cnmd/svc/'),
      addresses,
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The state files' bytes: a request that changes nothing leaves them identical. */
export async function stateBytes(host: TestHost): Promise<string> {
  const parts: string[] = [];
  for (const f of ['state.json', 'state.json.log']) {
    parts.push(await readFile(join(host.dir, 'state', f), 'utf8').catch(() => '<none>'));
  }
  return parts.join('\n--\n');
}

/** Link names of a namespace (`ip -o link`), lo left out. */
export async function linkNames(exec: (cmd: string, args: string[]) => Promise<string>): Promise<string[]> {
  const out = await exec('ip', ['-o', 'link']);
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(': ')[1]!.split('@')[0]!)
    .filter((n) => n !== 'lo')
    .sort();
}

/** IPv4 addresses of a namespace as `ifname cidr`, lo left out. */
export async function addresses4(exec: (cmd: string, args: string[]) => Promise<string>): Promise<string[]> {
  const out = await exec('ip', ['-o', '-4', 'addr']);
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(/\s+/))
    .filter((f) => f[1] !== 'lo')
    .map((f) => `${f[1]} ${f[3]}`)
    .sort();
}

export interface ProcessSample {
  pid: number;
  /** Resident set, KiB (VmRSS). */
  rssKiB: number;
  fds: number;
  cmd: string;
}

/** The process `pid` and every process under it (through the parent pid of each /proc/PID/stat). */
export async function processTree(pid: number): Promise<ProcessSample[]> {
  const parent = new Map<number, number>();
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const stat = await readFile(`/proc/${d}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid) parent.set(Number(d), ppid);
  }
  const tree = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, pp] of parent) {
      if (tree.has(pp) && !tree.has(p)) {
        tree.add(p);
        grew = true;
      }
    }
  }
  const out: ProcessSample[] = [];
  for (const p of tree) {
    const status = await readFile(`/proc/${p}/status`, 'utf8').catch(() => '');
    if (!status) continue;
    const fds = await readdir(`/proc/${p}/fd`).catch(() => []);
    const cmd = (await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ').trim();
    out.push({ pid: p, rssKiB: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0), fds: fds.length, cmd });
  }
  return out;
}

/** Whether a process of this pid runs (and is not a zombie). */
export async function alive(pid: number | undefined): Promise<boolean> {
  if (pid === undefined) return false;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

/** Sums of a process tree: RSS (KiB), fds, processes. */
export function totals(tree: ProcessSample[]): { rssKiB: number; fds: number; processes: number } {
  return {
    rssKiB: tree.reduce((s, p) => s + p.rssKiB, 0),
    fds: tree.reduce((s, p) => s + p.fds, 0),
    processes: tree.length,
  };
}

/**
 * RSS growth in percent over a run, from samples taken at even intervals: the lowest sample of
 * the last third against the lowest of the first. A V8 heap grows until its collector runs and
 * then falls back (a sawtooth of 20% and more), so single samples compare one tooth with
 * another; the lowest in a window is what is left after a collection, which a leak raises.
 */
export function rssGrowthPct(samples: number[]): number {
  if (samples.length < 2) return 0;
  const third = Math.max(1, Math.floor(samples.length / 3));
  const first = Math.min(...samples.slice(0, third));
  const last = Math.min(...samples.slice(-third));
  return Math.round(((last - first) / first) * 1000) / 10;
}
