// A lab of simulated hosts sharing one NATS JetStream cluster, for the multi-host tests (#12).
// A lab namespace holds the underlay, a bridge `ul0` on 198.18.0.0/24 (RFC 2544's benchmarking
// range: no cnmd pool uses it, and it is not routed anywhere), and the NATS servers on
// 198.18.0.1. Each host is a TestHost whose namespace is joined to the bridge by a veth (`ul0` on
// the host's side, 198.18.0.(10+i)/24) before its daemon starts. Nothing has a default route:
// hosts reach the servers and one another, and nothing else. close() removes it all, pass or fail.
import { createRequire } from 'node:module';
import { TestHost } from './daemon-harness.js';
import { NatsCluster } from './nats-cluster.js';
import { Netns } from './netns.js';

export interface ClusterLabOptions {
  /** How many simulated hosts (default 3). */
  hosts?: number;
  /** How many NATS servers (default 3). */
  nats?: number;
  /** More arguments for every daemon. */
  daemonArgs?: string[];
  /** Pass --cluster, --host-id and --advertise-addr to the daemons (default true). */
  cluster?: boolean;
}

/** The underlay's first three octets; the lab's bridge is .1, host i is .(10+i). */
export const UNDERLAY = '198.18.0';

// The preamble of natsRun's scripts: CommonJS, so the client resolves by absolute path from any cwd.
const req = createRequire(import.meta.url);
const PREAMBLE = `const { connect } = require(${JSON.stringify(req.resolve('@nats-io/transport-node'))});
const { jetstream, jetstreamManager } = require(${JSON.stringify(req.resolve('@nats-io/jetstream'))});
const { Kvm } = require(${JSON.stringify(req.resolve('@nats-io/kv'))});
const [servers, name, ...args] = [JSON.parse(process.argv[1]), process.argv[2], ...process.argv.slice(3)];`;

export class ClusterLab {
  /** The simulated hosts; host i is `host<i>` at 198.18.0.(10+i). */
  readonly hosts: TestHost[] = [];
  readonly #sandboxes: Netns[] = [];
  #closed: Promise<void> | undefined;

  private constructor(
    /** The lab namespace: the underlay bridge and the NATS servers. */
    readonly ns: Netns,
    readonly nats: NatsCluster,
  ) {}

  static async start(opts: ClusterLabOptions = {}): Promise<ClusterLab> {
    const ns = await Netns.create('cnmd-lab');
    let lab: ClusterLab | undefined;
    try {
      await ns.exec('ip', ['link', 'add', 'ul0', 'type', 'bridge']);
      await ns.exec('ip', ['addr', 'add', `${UNDERLAY}.1/24`, 'dev', 'ul0']);
      await ns.exec('ip', ['link', 'set', 'ul0', 'up']);
      const nats = await NatsCluster.start({ size: opts.nats ?? 3, netns: ns, address: `${UNDERLAY}.1` });
      lab = new ClusterLab(ns, nats);
      const hosts = await Promise.allSettled(
        Array.from({ length: opts.hosts ?? 3 }, (_, i) => lab!.#startHost(i, opts)),
      );
      for (const h of hosts) if (h.status === 'fulfilled') lab.hosts.push(h.value);
      const failed = hosts.find((h) => h.status === 'rejected');
      if (failed) throw failed.reason;
      if (opts.cluster !== false) await lab.connected();
      return lab;
    } catch (err) {
      if (lab) await lab.close();
      else await ns.remove();
      throw err;
    }
  }

  async #startHost(i: number, opts: ClusterLabOptions): Promise<TestHost> {
    const cluster =
      opts.cluster === false
        ? []
        : ['--cluster', this.nats.urls.join(','), '--host-id', this.hostId(i), '--advertise-addr', this.address(i)];
    return TestHost.start({
      args: [...cluster, ...(opts.daemonArgs ?? [])],
      // The veth is made from the lab's side: its peer is born in the host namespace as `ul0`.
      prepare: async (host) => {
        await this.ns.exec('ip', ['link', 'add', `ulh${i}`, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', host.name]);
        await this.ns.exec('ip', ['link', 'set', `ulh${i}`, 'master', 'ul0', 'up']);
        await host.exec('ip', ['addr', 'add', `${this.address(i)}/24`, 'dev', 'ul0']);
        await host.exec('ip', ['link', 'set', 'ul0', 'up']);
      },
    });
  }

  /** Resolves once every daemon (or host i's) says it is connected to the cluster and in step. */
  async connected(i?: number, timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (const h of i === undefined ? this.hosts : [this.hosts[i]!]) {
      for (;;) {
        const r = await h.api<{ connected?: boolean }>('GET', '/v1/cluster').catch((e) => ({ status: 0, body: e }));
        if (r.status === 200 && r.body.connected) break;
        if (Date.now() > end)
          throw new Error(`${h.ns.name} is not connected to the cluster: ${JSON.stringify(r.body)}`);
        await new Promise((res) => setTimeout(res, 50));
      }
    }
  }

  /** Host i's underlay address (its --advertise-addr). */
  address(i: number): string {
    return `${UNDERLAY}.${10 + i}`;
  }

  /** Host i's --host-id. */
  hostId(i: number): string {
    return `host${i}`;
  }

  /** A new namespace (`<name>-<random>`) for a container on host i: attach it through `hosts[i]`.
   * Removed by close(), after the daemons. */
  async sandbox(i: number, name = `cnmd-sb${i}`): Promise<Netns> {
    if (!this.hosts[i]) throw new RangeError(`no host ${i} in the lab`);
    const ns = await Netns.create(name);
    this.#sandboxes.push(ns);
    return ns;
  }

  /**
   * Runs `body` (the body of an async function) under node inside host i's namespace (or the
   * lab's, for 'lab'), with `nc` connected to the cluster over the underlay, `jetstream`,
   * `jetstreamManager`, `Kvm` and `args` in scope; resolves with what it returned (as JSON).
   */
  async natsRun<T = unknown>(where: number | 'lab', body: string, ...args: string[]): Promise<T> {
    const ns = where === 'lab' ? this.ns : this.hosts[where]?.ns;
    if (!ns) throw new RangeError(`no host ${where} in the lab`);
    const name = where === 'lab' ? 'lab' : this.hostId(where);
    const code = `${PREAMBLE}
(async () => { const nc = await connect({ servers, name, timeout: 5000 });
  try { const out = await (async () => { ${body} })(); process.stdout.write(JSON.stringify(out ?? null)); }
  finally { await nc.close(); } })().catch((e) => { console.error(String(e?.stack ?? e)); process.exit(1); });`;
    const out = await ns.exec(process.execPath, ['-e', code, JSON.stringify(this.nats.urls), name, ...args]);
    return JSON.parse(out) as T;
  }

  /** Removes the daemons and host namespaces, the sandboxes, NATS, and the lab; idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        await Promise.all(this.hosts.map((h) => h.close().catch(() => {})));
        for (const s of this.#sandboxes) await s.remove().catch(() => {});
      } finally {
        await this.nats.close().finally(() => this.ns.remove());
      }
    })();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
