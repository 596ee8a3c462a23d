// A real NATS JetStream cluster for tests: `size` nats-server processes with explicit routes to
// one another, each with its own store dir in one temp dir, listening on `address` inside a
// given namespace (`ip netns exec`, which execs in place: the child's pid is the server's) or on
// loopback. Ports are chosen free once and kept, so a killed server restarts where it was and
// rejoins with its data. close() kills every server and removes the temp dir, pass or fail.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Netns, run } from './netns.js';

export interface NatsClusterOptions {
  /** How many servers (default 3). */
  size?: number;
  /** The namespace they run in; without one, the machine's own (loopback). */
  netns?: Netns;
  /** The address they listen on, in that namespace (default 127.0.0.1). */
  address?: string;
}

// Holds `n` listeners on ADDR:0 at once (so the ports differ), prints their ports, lets them go.
const FREE_PORTS = `const [a, n] = process.argv.slice(1); let left = +n;
const ss = Array.from({ length: +n }, () => require('node:net').createServer());
for (const s of ss) s.listen(0, a, () => { if (--left === 0) { console.log(JSON.stringify(ss.map((x) => x.address().port))); for (const x of ss) x.close(); } });`;

// Polls each monitoring URL until every one answers /healthz 200 (JetStream current with a meta
// leader) and /jsz names one meta leader, and a leader for each stream it holds, among `names`.
// Neither alone is enough on 2.9: for seconds after a leader died, /healthz still says ok and
// /jsz still names the dead one; and /healthz says ok while a stream has no leader yet.
const READY = `const { urls, names, ms } = JSON.parse(process.argv[1]); const end = Date.now() + ms;
const get = (u) => fetch(u, { signal: AbortSignal.timeout(1000) }).then(async (r) => [r.status, await r.text()], (e) => [0, String(e)]);
(async () => { let why = '';
  while (Date.now() < end) {
    const leaders = new Set(); why = '';
    for (const u of urls) {
      const [hs, hb] = await get(u + '/healthz'); const [, jb] = await get(u + '/jsz?accounts=true&streams=true');
      let jsz = {}; try { jsz = JSON.parse(jb); } catch {}
      const l = jsz.meta_cluster?.leader; leaders.add(l);
      const streams = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
      const leaderless = streams.filter((s) => s.cluster && !names.includes(s.cluster.leader)).map((s) => s.name);
      if (hs !== 200 || (urls.length > 1 && (!names.includes(l) || leaderless.length)))
        why += u + ': healthz ' + hs + ' ' + hb.trim() + ', meta leader ' + l + ', streams without one: ' + leaderless + '\\n';
    }
    if (!why && (leaders.size === 1 || urls.length === 1)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  console.error(why || 'servers disagree on the leader'); process.exit(1);
})();`;

// Servers still running when the test process exits are killed with it (a crashed worker).
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

interface Server {
  name: string;
  args: string[];
  proc?: ChildProcess;
  log: string;
}

export class NatsCluster {
  readonly address: string;
  readonly netns: Netns | undefined;
  /** The temp dir holding each server's store dir. */
  readonly dir: string;
  readonly #servers: Server[];
  readonly #ports: { client: number; route: number; monitor: number }[];
  #closed: Promise<void> | undefined;

  private constructor(opts: { address: string; netns?: Netns; dir: string; ports: number[]; size: number }) {
    this.address = opts.address;
    this.netns = opts.netns;
    this.dir = opts.dir;
    const cluster = `cnmd-t-${randomBytes(3).toString('hex')}`;
    this.#ports = Array.from({ length: opts.size }, (_, i) => ({
      client: opts.ports[3 * i]!,
      route: opts.ports[3 * i + 1]!,
      monitor: opts.ports[3 * i + 2]!,
    }));
    const routeUrl = (i: number) => `nats://${this.#host}:${this.#ports[i]!.route}`;
    this.#servers = this.#ports.map((p, i) => ({
      name: `n${i}`,
      log: '',
      // Routes listed explicitly: each server solicits every other one (DESIGN.md). One server
      // alone is no cluster (JetStream refuses a cluster without routes).
      args: [
        ...['-a', this.address, '-p', String(p.client), '-m', String(p.monitor), '-n', `n${i}`],
        ...['-js', '-sd', join(opts.dir, `n${i}`)],
        ...(opts.size === 1
          ? []
          : [
              ...['--cluster_name', cluster, '--cluster', routeUrl(i)],
              ...['--routes', this.#ports.flatMap((_, j) => (j === i ? [] : [routeUrl(j)])).join(',')],
            ]),
      ],
    }));
  }

  /** Starts the servers and waits until JetStream is up with a meta leader (ready()). */
  static async start(opts: NatsClusterOptions = {}): Promise<NatsCluster> {
    const size = opts.size ?? 3;
    const address = opts.address ?? '127.0.0.1';
    const dir = await mkdtemp(join(tmpdir(), 'cnmd-nats-'));
    let cluster: NatsCluster | undefined;
    try {
      const args = ['-e', FREE_PORTS, address, String(3 * size)];
      const out = await (opts.netns ? opts.netns.exec(process.execPath, args) : run(process.execPath, args));
      cluster = new NatsCluster({ address, netns: opts.netns, dir, ports: JSON.parse(out), size });
      for (let i = 0; i < size; i++) await mkdir(join(dir, `n${i}`));
      await cluster.startAll();
      await cluster.ready();
      return cluster;
    } catch (err) {
      if (cluster) await cluster.close();
      else await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  get #host(): string {
    return this.address.includes(':') ? `[${this.address}]` : this.address;
  }

  get size(): number {
    return this.#servers.length;
  }

  /** The client URL of each server, nats://ADDR:PORT. */
  get urls(): string[] {
    return this.#ports.map((p) => `nats://${this.#host}:${p.client}`);
  }

  /** The monitoring URL of each server, http://ADDR:PORT (inside its namespace). */
  get monitorUrls(): string[] {
    return this.#ports.map((p) => `http://${this.#host}:${p.monitor}`);
  }

  /** Server i's name (its JetStream peer name: `n<i>`). */
  name(i: number): string {
    return this.#server(i).name;
  }

  /** Server i's pid while it runs. */
  pid(i: number): number | undefined {
    return this.#server(i).proc?.pid;
  }

  running(i: number): boolean {
    return this.#server(i).proc !== undefined;
  }

  /** What server i wrote to stderr, over all its runs. */
  log(i: number): string {
    return this.#server(i).log;
  }

  /**
   * Waits until every running server reports JetStream current, one meta leader among the running
   * ones, and a running leader for each stream it holds. After a fresh start that takes ~0.3 s;
   * after stopAll/startAll, or a killed leader, the election takes 4-6 s on 2.9.
   */
  async ready(timeoutMs = 30_000): Promise<void> {
    const up = this.#servers.flatMap((s, i) => (s.proc ? [i] : []));
    const arg = JSON.stringify({
      urls: up.map((i) => this.monitorUrls[i]),
      names: up.map((i) => this.#servers[i]!.name),
      ms: timeoutMs,
    });
    const args = ['-e', READY, arg];
    try {
      await (this.netns ? this.netns.exec(process.execPath, args) : run(process.execPath, args));
    } catch (err) {
      throw new Error(`the NATS cluster is not ready: ${(err as { stderr?: string }).stderr ?? err}`, { cause: err });
    }
  }

  /** SIGKILL server i, as a crash; resolves when it is gone. */
  async kill(i: number): Promise<void> {
    await this.#stop(this.#server(i), 'SIGKILL');
  }

  /** Starts server i again (killing it first if it runs): same ports, same store dir. Resolves
   * when it accepts clients; ready() waits for it to rejoin JetStream. */
  async restart(i: number): Promise<void> {
    const s = this.#server(i);
    await this.#stop(s, 'SIGKILL');
    await this.#spawn(s);
  }

  /** Every server down (SIGTERM, as an orderly shutdown). */
  async stopAll(): Promise<void> {
    await Promise.all(this.#servers.map((s) => this.#stop(s, 'SIGTERM')));
  }

  /** Every server that is down started again; resolves when they accept clients (then ready()). */
  async startAll(): Promise<void> {
    await Promise.all(this.#servers.filter((s) => !s.proc).map((s) => this.#spawn(s)));
  }

  #server(i: number): Server {
    const s = this.#servers[i];
    if (!s) throw new RangeError(`no NATS server ${i} (the cluster has ${this.#servers.length})`);
    return s;
  }

  async #spawn(s: Server): Promise<void> {
    if (this.#closed) throw new Error('the NATS cluster is closed');
    const inNs = this.netns ? ['netns', 'exec', this.netns.name, 'nats-server'] : [];
    const proc = spawn(this.netns ? 'ip' : 'nats-server', [...inNs, ...s.args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    s.proc = proc;
    live.add(proc);
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${s.name} did not start: ${seen}`)), 10_000);
      proc.stderr?.on('data', (d: Buffer) => {
        s.log += d.toString();
        if (seen.length < 65536) seen += d.toString();
        if (seen.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code, signal) => {
        live.delete(proc);
        if (s.proc === proc) s.proc = undefined;
        clearTimeout(timer);
        reject(new Error(`${s.name} exited (${code ?? signal}): ${seen}`));
      });
    }).catch(async (err) => {
      await this.#stop(s, 'SIGKILL');
      throw err;
    });
  }

  async #stop(s: Server, signal: NodeJS.Signals): Promise<void> {
    const p = s.proc;
    if (!p) return;
    s.proc = undefined;
    if (p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((resolve) => p.once('exit', resolve));
    p.kill(signal);
    // An orderly shutdown that hangs becomes a kill.
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }

  /** Kills every server and removes the temp dir; idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all(this.#servers.map((s) => this.#stop(s, 'SIGKILL')));
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
