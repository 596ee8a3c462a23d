// A simulated host for daemon tests: its own network namespace with the cnmd daemon running
// inside, a state dir and socket in a temp dir, and the CLI to talk to it. Everything it made
// goes with close(): the daemon, the namespace (and the bridges, veths and rules in it), the
// temp dir, and the /etc/netns entries of the sandboxes it was given.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Netns, run } from './netns.js';

// From e2e/src (vitest) or from e2e/dist/src (benches run built).
const CNMD = ['../../sidecar/bin/cnmd.js', '../../../sidecar/bin/cnmd.js']
  .map((p) => fileURLToPath(new URL(p, import.meta.url)))
  .find((f) => existsSync(f))!;

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export class TestHost {
  readonly ns: Netns;
  readonly dir: string;
  #daemon: ChildProcess | undefined;
  #log = '';
  readonly #extra: string[];

  private constructor(ns: Netns, dir: string, extra: string[]) {
    this.ns = ns;
    this.dir = dir;
    this.#extra = extra;
  }

  /**
   * A host namespace with a running daemon. `upstreams` are its DNS upstreams (default none);
   * `prepare` runs on the new namespace before the daemon starts (links it must find there).
   */
  static async start(
    opts: {
      upstreams?: string[];
      args?: string[];
      dockerSocket?: string;
      dockerScope?: string;
      prepare?: (ns: Netns) => Promise<void>;
    } = {},
  ): Promise<TestHost> {
    const ns = await Netns.create('cnmd-h');
    const dir = await mkdtemp(join(tmpdir(), 'cnmd-host-'));
    // The host's resolv.conf as the daemon sees it: only the test's own upstreams, never the machine's.
    await writeFile(
      join(dir, 'resolv.conf'),
      `search cnmd.test\noptions ndots:0\n${(opts.upstreams ?? []).map((u) => `nameserver ${u}\n`).join('')}`,
    );
    const extra = [...(opts.args ?? [])];
    // The Docker source (docker/source.ts); with a scope, only the test's own containers.
    if (opts.dockerSocket) extra.push('--docker-socket', opts.dockerSocket);
    if (opts.dockerScope) extra.push('--docker-scope', opts.dockerScope);
    for (const u of opts.upstreams ?? ['127.0.0.1:1']) extra.push('--dns-upstream', u);
    const host = new TestHost(ns, dir, extra);
    try {
      await opts.prepare?.(ns);
      await host.startDaemon();
    } catch (err) {
      await host.close();
      throw err;
    }
    return host;
  }

  /**
   * A namespace playing "the internet": joined to the host by a veth, with TEST-NET addresses
   * (host 203.0.113.1, internet 203.0.113.2). Nothing in it routes anywhere else.
   */
  async uplink(): Promise<Netns> {
    if (this.#inet) return this.#inet;
    const inet = await Netns.create('cnmd-inet');
    this.#inet = inet;
    await this.ns.exec('ip', ['link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'wan0', 'netns', inet.name]);
    await this.ns.exec('ip', ['addr', 'add', '203.0.113.1/24', 'dev', 'uplink0']);
    await this.ns.exec('ip', ['link', 'set', 'uplink0', 'up']);
    await inet.exec('ip', ['addr', 'add', '203.0.113.2/24', 'dev', 'wan0']);
    await inet.exec('ip', ['link', 'set', 'wan0', 'up']);
    return inet;
  }

  #inet: Netns | undefined;

  get socket(): string {
    return join(this.dir, 'cnmd.sock');
  }

  /** The daemon's pid (nsenter execs node in place), while it runs. */
  get pid(): number | undefined {
    return this.#daemon?.pid;
  }

  get log(): string {
    return this.#log;
  }

  async startDaemon(): Promise<void> {
    const args = [
      `--net=${this.ns.path}`,
      process.execPath,
      CNMD,
      'daemon',
      '--state-dir',
      join(this.dir, 'state'),
      '--socket',
      this.socket,
      '--resolv-conf',
      join(this.dir, 'resolv.conf'),
      ...this.#extra,
    ];
    // nsenter switches only the network namespace (`ip netns exec` would give the daemon a mount
    // namespace of its own, and the netns it mounts, its LB sandboxes, would die with it, as
    // they would not on a real host), and execs node in place: the child's pid is the daemon's.
    const proc = spawn('nsenter', args, { stdio: ['ignore', 'inherit', 'pipe'] });
    this.#daemon = proc;
    proc.stderr?.on('data', (d: Buffer) => {
      this.#log += d.toString();
    });
    const exited = new Promise<never>((_, reject) =>
      proc.once('close', (code) => reject(new Error(`the daemon exited (${code}): ${this.#log}`))),
    );
    // Asked over the socket from here, not with the CLI: a node process per poll would compete
    // with the daemon for the CPU (in the VM, a start of node costs seconds).
    const up = () =>
      this.api('GET', '/v1/networks').then(
        (r) => r.status === 200,
        () => false,
      );
    // In the VM (qemu without KVM) a daemon takes 20-40 s to load its modules, not 1-2 s.
    for (const end = Date.now() + (process.env.CNMD_IN_VM === '1' ? 300_000 : 60_000); Date.now() < end; ) {
      if (await Promise.race([up(), exited])) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the daemon did not come up: ${this.#log}`);
  }

  /** SIGKILL, as a crash: nothing of the daemon's own cleanup runs. */
  async kill9(): Promise<void> {
    await this.#stop('SIGKILL');
  }

  async stopDaemon(): Promise<void> {
    await this.#stop('SIGTERM');
  }

  async #stop(signal: NodeJS.Signals): Promise<void> {
    const p = this.#daemon;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    // Networks made on first use (the Docker source) have load-balancer sandboxes too.
    const r = await this.api<{ id: string; scope?: string }[]>('GET', '/v1/networks').catch(() => undefined);
    if (r?.status === 200) for (const n of r.body) this.#lbs.add(this.#lb(n));
    this.#daemon = undefined;
    const gone = new Promise((resolve) => p.once('exit', resolve));
    p.kill(signal);
    await gone;
  }

  /** One request to the admin API over the unix socket: the HTTP status and the JSON body. */
  api<T = { code?: string; message?: string }>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: this.socket, method, path, headers: { 'content-type': 'application/json' } },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Runs `cnmd ARGS --socket <this host's>`. */
  cli(...args: string[]): Promise<CliResult> {
    return new Promise((resolve) => {
      execFile(process.execPath, [CNMD, ...args, '--socket', this.socket], (err, out, errOut) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out, err: errOut });
      });
    });
  }

  /** Runs the CLI and returns its output, failing with its error when it fails. */
  async ok(...args: string[]): Promise<string> {
    const r = await this.cli(...args);
    if (r.code !== 0) throw new Error(`cnmd ${args.join(' ')} failed (${r.code}): ${r.err}`);
    // A network's load-balancer sandbox is named after its id: remembered for close().
    if (args[0] === 'network' && args[1] === 'create') {
      this.#lbs.add(this.#lb({ id: r.out.trim(), ...(args.includes('global') ? { scope: 'global' } : {}) }));
    }
    return r.out;
  }

  readonly #lbs = new Set<string>();

  /** The name the daemon gives a network's load-balancer sandbox (sidecar/src/lb/wiring.ts lbName). */
  #lb(n: { id: string; scope?: string }): string {
    const at = this.#extra.indexOf('--host-id');
    const host = at >= 0 ? this.#extra[at + 1] : undefined;
    return `cnmd-lb-${n.id.slice(0, 10)}${n.scope === 'global' && host ? `-${host}` : ''}`;
  }

  async json<T = unknown>(...args: string[]): Promise<T> {
    return JSON.parse(await this.ok(...args, '--json')) as T;
  }

  async close(): Promise<void> {
    // The daemon's load-balancer sandboxes are named namespaces of their own: remove them too.
    const lbs = this.#lbs;
    await this.#stop('SIGTERM').catch(() => {});
    for (const name of lbs)
      if (existsSync(`/run/netns/${name}`)) await run('ip', ['netns', 'delete', name]).catch(() => {});
    await this.#inet?.remove().catch(() => {});
    await this.ns.remove().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
