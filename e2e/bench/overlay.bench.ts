// npm run bench -w @cnmd/e2e -- overlay: the overlay driver (#13). Three simulated hosts (each a
// namespace with its own cnmd daemon) and a three-node NATS JetStream cluster (ClusterLab), one
// overlay network (VXLAN between the hosts' underlay addresses). Measured in one run:
// - overlay_vs_bridge_throughput: TCP throughput (iperf3, one stream, the first second left
//   out) from a container on host0 to one on host1 over the overlay, beside the same two kinds
//   of containers on one local bridge network of host0; each 3 times, the two alternating (which
//   goes first swaps every round), medians compared;
// - reach: containers attached on host0 one after another through its API (node:http over the
//   unix socket), each with a TCP listener made in its namespace before the attach; for each,
//   from the start of the attach call until a prober inside a container on host1 has a TCP
//   connection to it by name. The prober is one long-lived node process in that container's
//   namespace: it asks 127.0.0.11 for the name (UDP, one query in flight, at least 300 µs
//   apart) and connects the moment an address answers. Both ends read CLOCK_MONOTONIC
//   (process.hrtime.bigint()), checked to agree when the prober starts. p50/p99;
// - first_packet_failures: attaches whose name answered on host1 but whose first connect failed,
//   took a second or more (a SYN sent again: the first RTO is 1 s), or saw the namespace's
//   TCPSynRetrans grow. The overlay writes a remote container's FDB and neighbour entries before
//   its name answers, so the first SYN should always get through.
// Run as root. Everything it made is removed at the end, also when it fails.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Server, Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { ClusterLab } from '../src/cluster-lab.js';
import type { TestHost } from '../src/daemon-harness.js';
import type { Netns } from '../src/netns.js';
import { load, median, pct, pool, printHostLogs, until } from './util.js';

const REACH = Number(process.env.CNMD_BENCH_CONTAINERS ?? 300);
const SECONDS = Number(process.env.CNMD_BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.CNMD_BENCH_ROUNDS ?? 3);
const NET = 'ov';
const BRIDGE = 'br';
// A /16 (the hosts' blocks are /26s from its bottom): room for REACH containers on host0.
const SUBNET = '10.66.0.0/16';
const LISTEN_PORT = 7000;
const IPERF_PORT = 5201;
/** A first connect not done by then had its SYN (or the SYN-ACK) sent again. */
const FIRST_MS = 1000;

const ms = (ns: bigint) => Number(ns) / 1e6;

interface Attached {
  ip: string;
  mac: string;
}

async function attach(host: TestHost, sandbox: Netns, network: string, name: string): Promise<Attached> {
  const r = await host.api<Attached & { code?: string; message?: string }>('POST', '/v1/endpoints', {
    sandbox: sandbox.name,
    network,
    name,
  });
  if (r.status !== 201) throw new Error(`attach ${name}: ${r.status} ${r.body?.code} ${r.body?.message}`);
  return r.body;
}

async function createNetwork(host: TestHost, spec: Record<string, unknown>): Promise<void> {
  const r = await host.api('POST', '/v1/networks', spec);
  if (r.status !== 201) throw new Error(`network ${spec.name}: ${r.status} ${r.body?.code} ${r.body?.message}`);
}

/** The MTU of the one link besides lo in a container's namespace. */
async function mtu(ns: Netns): Promise<number> {
  const links = (await ns.exec('ip', ['-o', 'link'])).split('\n').filter((l) => l && !/^\d+: lo:/.test(l));
  return Number(/ mtu (\d+) /.exec(links[0] ?? '')?.[1]);
}

// ---- reach: the listeners on host0 and the prober on host1 ----

// Run under nsenter --net=<a container's namespace>: listens on 0.0.0.0:PORT there and hands the
// listening socket to the bench over the IPC channel (Node passes it with SCM_RIGHTS), then exits
// when the bench, holding it, disconnects. The socket stays in the container's namespace; the
// bench accepts on it. So a container needs one short-lived process and none for the whole run.
const LISTEN = `const s = require('node:net').createServer();
process.on('disconnect', () => process.exit(0));
s.listen(Number(process.argv[1]), '0.0.0.0', () => process.send('listening', s));`;

/** A TCP listener in `ns` on `port`, held (and accepted on) by this process. */
function listenIn(ns: Netns, port: number): Promise<Server> {
  const child = spawn('nsenter', [`--net=${ns.path}`, process.execPath, '-e', LISTEN, String(port)], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    let server: Server | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('message', (_m, handle) => {
      server = handle as Server;
      child.disconnect();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (server) resolve(server);
      else reject(new Error(`the listener in ${ns.name} exited (${code ?? signal}) without a socket: ${err}`));
    });
  });
}

// Inside a container on host1: stdin `w NAME PORT` (answered `a NAME`) asks 127.0.0.11 for NAME
// until an address answers (one query in flight, the next no sooner than `gapUs` after the last,
// again after 5 ms without an answer), then connects to it on PORT at once; `t` asks the time
// (answered `t NS`). stdout: one JSON object per name: when the address answered, when the first
// connect ended and how, when a connection was first made (the first attempt, or later ones every
// 20 ms after an error, for at most `giveUpMs`), and the namespace's TCP counters around it
// (RetransSegs of /proc/net/snmp, TCPSynRetrans of /proc/net/netstat: this namespace's, since
// /proc/net is the reader's). Connections are reset when made (no FIN to retransmit later).
const PROBER = `const dgram = require('node:dgram'); const net = require('node:net'); const fs = require('node:fs');
const [gapMs, firstMs, giveUpMs] = [Number(process.argv[1]) / 1000, Number(process.argv[2]), Number(process.argv[3])];
const now = () => process.hrtime.bigint();
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const counters = () => {
  const c = {};
  for (const f of ['/proc/net/snmp', '/proc/net/netstat']) {
    const lines = fs.readFileSync(f, 'utf8').split('\\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const k = lines[i].trim().split(/\\s+/), v = lines[i + 1].trim().split(/\\s+/);
      if (k[0] === 'Tcp:' || k[0] === 'TcpExt:') for (let j = 1; j < k.length; j++) c[k[j]] = Number(v[j]);
    }
  }
  return { retransSegs: c.RetransSegs, synRetrans: c.TCPSynRetrans };
};
const pending = []; const ports = new Map(); const queries = new Map(); const byId = new Map();
let next = 0, id = 0, inFlight = false, lastSend = 0n, timer;
const sock = dgram.createSocket('udp4');
const query = (qid, name) => {
  // RFC 1035 4.1: header (id, RD set, one question), QNAME as labels, QTYPE A, QCLASS IN
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  return Buffer.concat([Buffer.from([qid >> 8, qid & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
};
const skipName = (m, o) => { for (;;) { const l = m[o]; if (l === 0) return o + 1; if ((l & 0xc0) === 0xc0) return o + 2; o += l + 1; } };
// RFC 1035 4.1.3: the first answer RR of type A (1) and class IN, its RDATA
const firstA = (m) => {
  let o = skipName(m, 12) + 4;
  for (let i = 0, n = m.readUInt16BE(6); i < n && o < m.length; i++) {
    o = skipName(m, o); const type = m.readUInt16BE(o), len = m.readUInt16BE(o + 8);
    if (type === 1 && len === 4) return [...m.subarray(o + 10, o + 14)].join('.');
    o += 10 + len;
  }
};
const send = () => {
  clearTimeout(timer); inFlight = false;
  if (pending.length === 0) return;
  const wait = gapMs - Number(now() - lastSend) / 1e6;
  if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
  const name = pending[next++ % pending.length];
  const qid = id = (id + 1) & 0xffff; byId.set(qid, name);
  queries.set(name, (queries.get(name) ?? 0) + 1);
  inFlight = true; lastSend = now();
  sock.send(query(qid, name), 53, '127.0.0.11');
  timer = setTimeout(send, 5); // lost (or the server is busy): ask again
};
const probe = (name, ip, port, answered, nq) => {
  const r = { name, ip, answered: String(answered), queries: nq, attempts: 0, errors: [] };
  const before = counters();
  const attempt = () => {
    r.attempts++;
    const first = r.attempts === 1; const t = now();
    const s = net.connect({ host: ip, port });
    const slow = first ? setTimeout(() => { r.firstFailed ??= 'not connected within ' + firstMs + ' ms'; }, firstMs) : undefined;
    s.once('connect', () => {
      const at = now(); clearTimeout(slow); s.resetAndDestroy();
      if (first) r.firstMs = Number(at - t) / 1e6;
      const after = counters();
      r.synRetrans = after.synRetrans - before.synRetrans; r.retransSegs = after.retransSegs - before.retransSegs;
      if (r.synRetrans > 0) r.firstFailed ??= 'a SYN sent again (TCPSynRetrans +' + r.synRetrans + ')';
      r.connected = String(at);
      process.stdout.write(JSON.stringify(r) + '\\n');
    });
    s.once('error', (e) => {
      clearTimeout(slow); s.destroy(); r.errors.push(e.code ?? String(e));
      if (first) { r.firstMs = Number(now() - t) / 1e6; r.firstFailed ??= 'connect failed: ' + (e.code ?? e); }
      if (Number(now() - answered) / 1e6 < giveUpMs) return void setTimeout(attempt, 20);
      const after = counters();
      r.synRetrans = after.synRetrans - before.synRetrans; r.retransSegs = after.retransSegs - before.retransSegs;
      process.stdout.write(JSON.stringify(r) + '\\n');
    });
  };
  attempt();
};
sock.on('message', (m) => {
  const at = now();
  const name = byId.get(m.readUInt16BE(0));
  const ip = (m[3] & 0x0f) === 0 && m.readUInt16BE(6) > 0 ? firstA(m) : undefined;
  const i = pending.indexOf(name);
  if (ip && i >= 0) {
    pending.splice(i, 1);
    const nq = queries.get(name); queries.delete(name);
    probe(name, ip, ports.get(name), at, nq);
  }
  if (inFlight && (m.readUInt16BE(0) === id)) send();
});
sock.bind(0, () => {
  require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 't') return void process.stdout.write('t ' + now() + '\\n');
    const [cmd, name, port] = line.split(' ');
    if (cmd === 'c') return void (pending.includes(name) && pending.splice(pending.indexOf(name), 1));
    ports.set(name, Number(port));
    if (!pending.includes(name)) pending.push(name);
    process.stdout.write('a ' + name + '\\n');
    if (!inFlight) send();
  });
  process.stdout.write('ready\\n');
});
process.stdin.on('end', () => process.exit(0));`;

interface Reach {
  name: string;
  ip: string;
  /** When its address first answered (process.hrtime.bigint()). */
  answered: bigint;
  queries: number;
  attempts: number;
  /** How long the first connect took, or until it failed. */
  firstMs: number;
  /** Why the first connect counts as a failure; absent when it went through at once. */
  firstFailed?: string;
  errors: string[];
  /** When a connection was first made; absent when none was within the prober's give-up time. */
  connected?: bigint;
  synRetrans: number;
  retransSegs: number;
}

/** PROBER in a container's namespace (as DnsPoller, whose clock check it shares). */
class Prober {
  readonly #proc: ChildProcess;
  readonly #waiting = new Map<string, { acked: () => void; done: (r: Reach) => void; failed: (e: Error) => void }>();
  #times: ((ns: bigint) => void)[] = [];
  #err = '';
  #closed = false;

  private constructor(proc: ChildProcess) {
    this.#proc = proc;
  }

  static async start(netns: string, opts: { gapUs?: number; giveUpMs?: number } = {}): Promise<Prober> {
    const args = [String(opts.gapUs ?? 300), String(FIRST_MS), String(opts.giveUpMs ?? 10_000)];
    // nsenter execs node in place: the child's pid is the prober's.
    const proc = spawn('nsenter', [`--net=${netns}`, process.execPath, '-e', PROBER, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    proc.stdin!.on('error', () => {}); // written to after it died: told by 'exit'
    const p = new Prober(proc);
    try {
      await p.#follow();
      const before = process.hrtime.bigint();
      const theirs = await p.now();
      const after = process.hrtime.bigint();
      if (theirs < before || theirs > after) throw new Error(`the prober's clock is not this process's: ${theirs}`);
      return p;
    } catch (err) {
      p.close();
      throw err;
    }
  }

  #follow(): Promise<void> {
    const proc = this.#proc;
    proc.stderr?.on('data', (d: Buffer) => {
      this.#err += d.toString();
    });
    return new Promise((resolve, reject) => {
      proc.once('exit', (code, signal) => {
        const err = new Error(`the prober exited (${code ?? signal}): ${this.#err}`);
        reject(err);
        for (const w of this.#waiting.values()) w.failed(err);
        this.#waiting.clear();
      });
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        if (line === 'ready') return resolve();
        if (line.startsWith('t ')) return this.#times.shift()?.(BigInt(line.slice(2)));
        if (line.startsWith('a ')) return this.#waiting.get(line.slice(2))?.acked();
        const r = JSON.parse(line) as Omit<Reach, 'answered' | 'connected'> & { answered: string; connected?: string };
        const w = this.#waiting.get(r.name);
        this.#waiting.delete(r.name);
        w?.done({
          ...r,
          answered: BigInt(r.answered),
          ...(r.connected === undefined ? {} : { connected: BigInt(r.connected) }),
        } as Reach);
      });
    });
  }

  now(): Promise<bigint> {
    return new Promise((resolve) => {
      this.#times.push(resolve);
      this.#proc.stdin!.write('t\n');
    });
  }

  /**
   * Starts asking for `name` (then connecting to it on `port`); resolves once the prober is
   * asking, with `reached`: what happened once its name answered (rejected after `timeoutMs`).
   */
  watch(name: string, port: number, timeoutMs = 30_000): Promise<{ reached: Promise<Reach> }> {
    if (this.#closed) return Promise.reject(new Error('the prober is closed'));
    return new Promise((acked, notAcked) => {
      const reached = new Promise<Reach>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.#waiting.delete(name);
          if (!this.#closed) this.#proc.stdin!.write(`c ${name}\n`);
          reject(new Error(`${name} was not reached in ${timeoutMs} ms`));
        }, timeoutMs);
        this.#waiting.set(name, {
          acked: () => acked({ reached }),
          done: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
          failed: (err) => {
            clearTimeout(timer);
            reject(err);
            notAcked(err);
          },
        });
      });
      reached.catch(() => {});
      this.#proc.stdin!.write(`w ${name} ${port}\n`);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#proc.stdin?.end();
    this.#proc.kill('SIGKILL');
  }
}

// ---- throughput: iperf3 ----

/** `iperf3 -s` in a container's namespace, once it listens. */
async function iperfServer(ns: Netns, started: ChildProcess[]): Promise<void> {
  const proc = spawn('nsenter', [`--net=${ns.path}`, 'iperf3', '-s', '-p', String(IPERF_PORT), '--forceflush'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(proc);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`iperf3 -s in ${ns.name} did not listen: ${out}`)), 10_000);
    const seen = (d: Buffer) => {
      out += d.toString();
      if (out.includes('Server listening')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', seen);
    proc.stderr!.on('data', seen);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`iperf3 -s in ${ns.name} exited (${code}): ${out}`));
    });
  });
}

/** Kills (SIGKILL) what this bench started and waits until each has exited. */
async function stop(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await gone;
    }),
  );
}

interface Iperf {
  mbps: number;
  retransmits: number;
  cpuSender: number;
  cpuReceiver: number;
}

/** One iperf3 run from `client` to `ip`: SECONDS measured after a second left out (slow start). */
async function iperf(client: Netns, ip: string): Promise<Iperf> {
  const out = await client.exec('iperf3', ['-c', ip, '-p', String(IPERF_PORT), '-t', String(SECONDS), '-O', '1', '-J']);
  const j = JSON.parse(out) as {
    end: {
      sum_received: { bits_per_second: number };
      sum_sent: { retransmits?: number };
      cpu_utilization_percent: { host_total: number; remote_total: number };
    };
  };
  return {
    mbps: Math.round(j.end.sum_received.bits_per_second / 1e5) / 10,
    retransmits: j.end.sum_sent.retransmits ?? 0,
    cpuSender: Math.round(j.end.cpu_utilization_percent.host_total),
    cpuReceiver: Math.round(j.end.cpu_utilization_percent.remote_total),
  };
}

export async function run(): Promise<void> {
  const loads: Record<string, string> = { start: load() };
  console.log(`load average (1/5/15 min) at the start: ${loads.start}`);
  const started: ChildProcess[] = [];
  const listeners: Server[] = [];
  let prober: Prober | undefined;
  let lab: ClusterLab | undefined;
  try {
    lab = await ClusterLab.start({ hosts: 3, nats: 3 });
    const hosts = lab.hosts;
    console.log(
      `lab: namespaces ${[lab.ns, ...hosts.map((h) => h.ns)].map((n) => n.name).join(', ')}; ` +
        `NATS pids ${Array.from({ length: lab.nats.size }, (_, i) => lab!.nats.pid(i)).join(', ')}; ` +
        `daemon pids ${hosts.map((h) => h.pid).join(', ')}`,
    );
    const [a, b] = [hosts[0]!, hosts[1]!];
    await createNetwork(a, { name: NET, driver: 'overlay', subnet: SUBNET });
    await until('the overlay network on every host', async () =>
      (await Promise.all(hosts.map((h) => h.api('GET', `/v1/networks/${NET}`)))).every((r) => r.status === 200),
    );
    const ov = (await a.api<{ options: { vni: string }; subnet: string }>('GET', `/v1/networks/${NET}`)).body;
    const vx = `cnvx${ov.options.vni}`;
    await createNetwork(a, { name: BRIDGE, driver: 'bridge' });
    const br = (await a.api<{ subnet: string }>('GET', `/v1/networks/${BRIDGE}`)).body;
    console.log(
      `networks: ${NET} (overlay, VNI ${ov.options.vni}, ${ov.subnet}), ${BRIDGE} (bridge on host0, ${br.subnet})`,
    );

    // 1. Throughput: host0 → host1 over the overlay; host0 → host0 on the bridge.
    const oc = await lab.sandbox(0, 'cnmd-boc');
    const os = await lab.sandbox(1, 'cnmd-bos');
    const bc = await lab.sandbox(0, 'cnmd-bbc');
    const bs = await lab.sandbox(0, 'cnmd-bbs');
    await attach(a, oc, NET, 'perf-oc');
    const osIp = (await attach(b, os, NET, 'perf-os')).ip;
    await attach(a, bc, BRIDGE, 'perf-bc');
    const bsIp = (await attach(a, bs, BRIDGE, 'perf-bs')).ip;
    await iperfServer(os, started);
    await iperfServer(bs, started);
    const mtus = { overlay: await mtu(oc), bridge: await mtu(bc) };
    // The overlay's peer entries came by the cluster: wait for the server's on host0.
    await until('a ping across the overlay', () =>
      oc.exec('ping', ['-c', '1', '-W', '1', osIp]).then(
        () => true,
        () => false,
      ),
    );
    const runs: Record<'overlay' | 'bridge', Iperf[]> = { overlay: [], bridge: [] };
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? (['overlay', 'bridge'] as const) : (['bridge', 'overlay'] as const);
      for (const kind of order) {
        const res = kind === 'overlay' ? await iperf(oc, osIp) : await iperf(bc, bsIp);
        runs[kind].push(res);
        console.log(
          `  round ${r + 1}, ${kind}: ${res.mbps} Mbit/s, ${res.retransmits} retransmits, ` +
            `CPU sender ${res.cpuSender}% receiver ${res.cpuReceiver}%; load ${load()}`,
        );
      }
    }
    const overlayMbps = median(runs.overlay.map((x) => x.mbps));
    const bridgeMbps = median(runs.bridge.map((x) => x.mbps));
    const ratio = Math.round((overlayMbps / bridgeMbps) * 1000) / 1000;
    loads.throughput = load();
    console.log(
      `throughput (iperf3, 1 stream, ${SECONDS} s after 1 s left out, median of ${ROUNDS}): ` +
        `overlay host0 → host1 ${overlayMbps} Mbit/s (MTU ${mtus.overlay}), ` +
        `bridge on host0 ${bridgeMbps} Mbit/s (MTU ${mtus.bridge}); overlay/bridge ${ratio}; load ${loads.throughput}`,
    );
    await stop(started.splice(0));

    // 2. Reach: attach on host0, connect by name from a container on host1.
    const watcher = await lab.sandbox(1, 'cnmd-bpr');
    await attach(b, watcher, NET, 'probe-1');
    prober = await Prober.start(watcher.path);
    const sbs: Netns[] = new Array(REACH);
    const accepted = new Set<number>();
    await pool(
      Array.from({ length: REACH }, (_, k) => k),
      8,
      async (k) => {
        const sb = await lab!.sandbox(0, 'cnmd-brc');
        const server = await listenIn(sb, LISTEN_PORT);
        listeners.push(server);
        server.on('connection', (c: Socket) => {
          accepted.add(k);
          c.on('error', () => {});
          c.destroy();
        });
        sbs[k] = sb;
      },
    );
    console.log(`${REACH} containers' namespaces with their listeners ready on host0; load ${load()}`);
    const reach: number[] = [];
    const visible: number[] = [];
    const attachMs: number[] = [];
    const connectMs: number[] = [];
    const failures: { name: string; why: string; reachMs: number | null; fdb: string; neigh: string }[] = [];
    let synRetrans = 0;
    let retransSegs = 0;
    for (let i = 0; i < REACH; i++) {
      const name = `reach-${i}`;
      const { reached } = await prober.watch(name, LISTEN_PORT, 30_000);
      const t0 = process.hrtime.bigint();
      const ep = await attach(a, sbs[i]!, NET, name);
      const t1 = process.hrtime.bigint();
      const r = await reached;
      if (r.ip !== ep.ip) throw new Error(`${name} answered ${r.ip} on host1, attached with ${ep.ip}`);
      attachMs.push(ms(t1 - t0));
      visible.push(ms(r.answered - t0));
      connectMs.push(r.firstMs);
      synRetrans += r.synRetrans;
      retransSegs += r.retransSegs;
      if (r.connected !== undefined) reach.push(ms(r.connected - t0));
      if (r.firstFailed !== undefined || r.connected === undefined) {
        // What host1's VXLAN device holds for it now (it was to hold it before the name answered).
        const [fdb, neigh] = await Promise.all([
          b.ns.exec('bridge', ['fdb', 'show', 'dev', vx]).then((o) =>
            o
              .split('\n')
              .filter((l) => l.startsWith(`${ep.mac} `))
              .join('; '),
          ),
          b.ns.exec('ip', ['neigh', 'show', 'dev', vx]).then((o) =>
            o
              .split('\n')
              .filter((l) => l.startsWith(`${ep.ip} `))
              .join('; '),
          ),
        ]);
        const f = {
          name,
          why: `${r.firstFailed ?? 'never connected'}; errors ${r.errors.join(',') || 'none'}, ${r.attempts} attempt(s)`,
          reachMs: r.connected === undefined ? null : Math.round(ms(r.connected - t0)),
          fdb,
          neigh,
        };
        failures.push(f);
        console.log(`  first-packet failure: ${JSON.stringify(f)}`);
      }
    }
    loads.reach = load();
    if (reach.length === 0) throw new Error('no container was reached');
    console.log(
      `reach (start of the attach on host0 → TCP connection by name from a container on host1), ${REACH} containers: ` +
        `p50 ${pct(reach, 50)} ms, p99 ${pct(reach, 99)} ms, max ${pct(reach, 100)} ms; ${reach.length} reached`,
    );
    console.log(
      `  of which the attach call on host0: p50 ${pct(attachMs, 50)} ms, p99 ${pct(attachMs, 99)} ms; ` +
        `until the name answered on host1: p50 ${pct(visible, 50)} ms, p99 ${pct(visible, 99)} ms; ` +
        `the first connect: p50 ${pct(connectMs, 50)} ms, p99 ${pct(connectMs, 99)} ms, max ${pct(connectMs, 100)} ms`,
    );
    console.log(
      `  first-packet failures: ${failures.length}; in the prober's namespace over the run: TCPSynRetrans +${synRetrans}, ` +
        `RetransSegs +${retransSegs}; ${accepted.size} listeners on host0 accepted theirs; load ${loads.reach}`,
    );
    loads.end = load();
    console.log(`load average (1/5/15 min) at the end: ${loads.end}`);

    const result = {
      bench: 'overlay',
      overlay_vs_bridge_throughput: ratio,
      reach_p50_ms: pct(reach, 50),
      reach_p99_ms: pct(reach, 99),
      first_packet_failures: failures.length,
      overlay_mbps: overlayMbps,
      bridge_mbps: bridgeMbps,
      overlay_mbps_runs: runs.overlay.map((x) => x.mbps),
      bridge_mbps_runs: runs.bridge.map((x) => x.mbps),
      overlay_retransmits: runs.overlay.map((x) => x.retransmits),
      bridge_retransmits: runs.bridge.map((x) => x.retransmits),
      overlay_mtu: mtus.overlay,
      bridge_mtu: mtus.bridge,
      iperf_seconds: SECONDS,
      reach_max_ms: pct(reach, 100),
      attach_call_p50_ms: pct(attachMs, 50),
      attach_call_p99_ms: pct(attachMs, 99),
      name_visible_p50_ms: pct(visible, 50),
      name_visible_p99_ms: pct(visible, 99),
      first_connect_p99_ms: pct(connectMs, 99),
      syn_retransmits: synRetrans,
      containers: REACH,
      reached: reach.length,
      load_1m_start: Number(loads.start!.split(' ')[0]),
      load_1m_end: Number(loads.end!.split(' ')[0]),
    };
    console.log(JSON.stringify(result));
  } catch (err) {
    printHostLogs(lab);
    throw err;
  } finally {
    prober?.close();
    await stop(started);
    for (const s of listeners) s.close();
    await lab?.close();
  }
}
