// npm run bench -w @cnmd/dns: the same 1,000 names served by cnmd's DnsServer (batch transport)
// and by dnsmasq, and by a stand-in responder on the batch transport (precomputed replies: what
// the transport alone can do), each in its own process on 127.0.0.1, driven in turn by dnsperf.
// Per round and contender:
// - throughput: dnsperf as fast as it can for SECONDS; the server's CPU time (utime + stime
//   from /proc/<pid>/stat, every thread) gives queries per server CPU-second;
// - latency: dnsperf -Q 20000 -v, which prints every answer with its latency (µs resolution);
//   p50 and p99 are taken over those lines, so they are true percentiles of every query; the
//   server's CPU time meanwhile gives queries per CPU-second when paced (`*_paced` in the JSON,
//   beside the closed-loop figure: batching helps less when queries come one by one).
// Contenders alternate within each round, and the order rotates between rounds, so drift in
// the machine's load falls on all of them; medians over rounds are reported with their spread.
// Everything is on loopback; dnsmasq runs with --no-resolv and cnmd with forwarding off, so
// nothing is ever forwarded. The last line is one JSON object.
// cnmd runs twice, with its metrics counters off and on (`cnmd-metrics`, read once a second).
// What metrics cost is a few per cent at most, less than the drift of a shared machine between
// two runs, and dnsperf, not the server, is what bounds the closed-loop QPS here (the stand-in
// transport, which does nothing, gets no more): so after the rounds the two run at once, PAIRS
// times, both pinned to one CPU (taskset) and each driven by its own dnsperf at full speed from
// the other CPUs. Sharing the CPU at the same moment, both meet the same load; the QPS a server
// can give is its queries per CPU-second, and metrics_on_qps_ratio is the median over the pairs
// of on ÷ off (metrics_on_closed_loop_qps_ratio: the rounds' closed-loop QPS, on ÷ off).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { benchNames } from './names.js';

const ROUNDS = Number(process.env.CNMD_BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.CNMD_BENCH_SECONDS ?? 5);
const PAIRS = Number(process.env.CNMD_BENCH_PAIRS ?? 20);
const PAIR_SECONDS = Number(process.env.CNMD_BENCH_PAIR_SECONDS ?? 2);
const LATENCY_SECONDS = Number(process.env.CNMD_BENCH_LATENCY_SECONDS ?? 3);
const RATE = 20_000;
const DNSMASQ = process.env.CNMD_BENCH_DNSMASQ ?? '/usr/sbin/dnsmasq';
const DNSPERF = process.env.CNMD_BENCH_DNSPERF ?? '/usr/bin/dnsperf';
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString());
const SERVER = new URL('./server.js', import.meta.url).pathname;

interface Contender {
  name: string;
  pid: number;
  port: number;
}

interface Round {
  qps: number;
  qpsPerCpu: number;
  p50: number;
  p99: number;
  /** Server CPU per query at 20k QPS, µs: batching helps less when queries come one by one. */
  cpuUsAt20k: number;
  /** The same as queries per server CPU-second, to stand beside qpsPerCpu (closed loop). */
  qpsPerCpuAt20k: number;
  lost: number;
  /** Cores busy with anything but the server during the full-speed run: dnsperf (about one) and the other tenants. */
  rest: number;
}

/** Every process started, so that cleanup finds them whatever failed. */
const children = new Set<ChildProcess>();
let stopping = false;

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (stopping) child.kill('SIGKILL'); // started while cleaning up (after a signal): not for long
  return child;
}

/** Kills and reaps every child, including any started meanwhile. */
async function stopAll(): Promise<void> {
  stopping = true;
  while (children.size > 0) {
    await Promise.all(
      [...children].map(async (child) => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = once(child, 'exit');
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
          await exited; // reaped
          clearTimeout(timer);
        }
        children.delete(child);
      }),
    );
  }
}

/** A port free right now on 127.0.0.1 (for dnsmasq, which cannot report the one it took). */
async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resolves once the server answers c0001.bench.test with an address. */
async function answers(port: number): Promise<void> {
  const s = dgram.createSocket('udp4');
  try {
    // RFC 1035 4.1: ID 0x4242, RD, one question: c0001.bench.test A IN.
    const q = Buffer.concat([
      Buffer.from([0x42, 0x42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
      Buffer.from('\x05c0001\x05bench\x04test\x00\x00\x01\x00\x01', 'latin1'),
    ]);
    for (let i = 0; i < 50; i++) {
      s.send(q, port, '127.0.0.1');
      const reply = await Promise.race([
        once(s, 'message').then(([m]) => m as Buffer),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)),
      ]);
      if (reply && reply.readUInt16BE(0) === 0x4242 && reply.readUInt16BE(6) === 1) return;
    }
    throw new Error(`nothing answers on 127.0.0.1:${port}`);
  } finally {
    s.close();
  }
}

async function startDnsmasq(hosts: string): Promise<Contender> {
  const port = await freePort();
  const child = track(
    spawn(
      DNSMASQ,
      [
        '--keep-in-foreground',
        '--conf-file=/dev/null', // no system configuration
        '--no-resolv', // never forwards: no upstreams at all
        '--no-hosts',
        `--addn-hosts=${hosts}`,
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        `--port=${port}`,
        '--pid-file=', // no pid file
        '--log-facility=/dev/null',
      ],
      { stdio: 'ignore' },
    ),
  );
  await answers(port);
  return { name: 'dnsmasq', pid: child.pid!, port };
}

async function startNode(name: string, args: string[]): Promise<Contender> {
  const child = track(spawn(process.execPath, [SERVER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] }));
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    const m = /^ready (\d+)$/.exec(line);
    if (!m) continue;
    const port = Number(m[1]);
    await answers(port);
    return { name, pid: child.pid!, port };
  }
  throw new Error(`${name} exited before it was ready`);
}

/** utime + stime of every thread of pid, seconds (proc(5): fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // field 3 onwards
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

/** CPU seconds the whole machine spent busy (proc(5): /proc/stat, every field but idle and iowait). */
function machineBusy(): number {
  const [, ...f] = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = f.map(Number) as number[];
  return (user! + nice! + system! + irq! + softirq! + steal!) / TICK;
}

/** Runs dnsperf; its stdout goes to `out` (a file) or is returned. */
async function dnsperf(args: string[], out?: string, cpus?: string): Promise<string> {
  const fd = out ? openSync(out, 'w') : undefined;
  try {
    const [cmd, argv] = cpus ? ['taskset', ['-c', cpus, DNSPERF, ...args]] : [DNSPERF, args];
    const child = track(spawn(cmd, argv, { stdio: ['ignore', fd ?? 'pipe', 'pipe'] }));
    let text = '';
    child.stdout?.on('data', (d) => (text += d));
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const [code] = await once(child, 'exit');
    if (code !== 0) throw new Error(`dnsperf ${args.join(' ')} failed (${code}): ${err}`);
    return text;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function stat(text: string, label: string): number {
  const m = new RegExp(`${label}:\\s+([\\d.]+)`).exec(text);
  if (!m) throw new Error(`dnsperf printed no "${label}"`);
  return Number(m[1]);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function throughput(
  c: Contender,
  queries: string,
  seconds = SECONDS,
  clientCpus?: string,
): Promise<Pick<Round, 'qps' | 'qpsPerCpu' | 'rest'>> {
  const before = cpuSeconds(c.pid);
  const busy = machineBusy();
  const out = await dnsperf(
    ['-s', '127.0.0.1', '-p', String(c.port), '-d', queries, '-l', String(seconds), '-q', '100'],
    undefined,
    clientCpus,
  );
  const cpu = cpuSeconds(c.pid) - before;
  // A server that answered errors (REFUSED is cheap) would win for nothing: all must be NOERROR.
  const codes = /Response codes:\s+(.*)/.exec(out)?.[1] ?? '';
  if (!/^NOERROR \d+ \(100\.00%\)$/.test(codes.trim())) throw new Error(`${c.name} answered ${codes}`);
  const rest = (machineBusy() - busy - cpu) / stat(out, 'Run time \\(s\\)');
  return { qps: stat(out, 'Queries per second'), qpsPerCpu: stat(out, 'Queries completed') / cpu, rest };
}

async function latency(c: Contender, queries: string, dir: string): Promise<Omit<Round, 'qps' | 'qpsPerCpu' | 'rest'>> {
  const file = join(dir, `latency-${c.name}.txt`);
  const before = cpuSeconds(c.pid);
  const args = ['-s', '127.0.0.1', '-p', String(c.port), '-d', queries, '-l', String(LATENCY_SECONDS)];
  await dnsperf([...args, '-Q', String(RATE), '-v'], file);
  const cpu = cpuSeconds(c.pid) - before;
  // "> NOERROR c0001.bench.test A 0.000041": one line per answer, latency in seconds.
  const us: number[] = [];
  const text = await readFile(file, 'latin1');
  for (const line of text.split('\n')) {
    if (line.startsWith('> ')) us.push(Number(line.slice(line.lastIndexOf(' ') + 1)) * 1e6);
  }
  us.sort((a, b) => a - b);
  const lost = stat(text, 'Queries lost');
  return {
    p50: percentile(us, 50),
    p99: percentile(us, 99),
    cpuUsAt20k: (cpu * 1e6) / us.length,
    qpsPerCpuAt20k: us.length / cpu,
    lost,
  };
}

async function main(dir: string): Promise<void> {
  const names = benchNames();
  const hosts = join(dir, 'hosts');
  const queries = join(dir, 'queries');
  await writeFile(hosts, names.map((n) => `${n.address} ${n.name}\n`).join(''));
  await writeFile(queries, names.map((n) => `${n.name} A\n`).join(''));
  const contenders = [
    await startNode('cnmd', ['cnmd', 'batch']),
    // The same server with its metrics counters on: next to it, so that each round runs the two close together.
    await startNode('cnmd-metrics', ['cnmd', 'batch', 'metrics']),
    await startDnsmasq(hosts),
    await startNode('transport', ['stand-in', 'batch']),
  ];
  if (process.env.CNMD_BENCH_DGRAM === '1') contenders.push(await startNode('cnmd-dgram', ['cnmd', 'dgram']));
  const load0 = readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ');
  console.log(
    `${names.length} names; ${ROUNDS} rounds of ${SECONDS} s full speed + ${LATENCY_SECONDS} s at ${RATE} QPS`,
  );
  console.log(`load average before: ${load0}; ${TICK} CPU ticks per second`);
  // Warm-up (JIT, caches), not counted.
  for (const c of contenders) await dnsperf(['-s', '127.0.0.1', '-p', String(c.port), '-d', queries, '-l', '2']);

  const results = new Map<string, Round[]>(contenders.map((c) => [c.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = contenders.map((_, i) => contenders[(i + r) % contenders.length]!);
    const t = new Map<string, Pick<Round, 'qps' | 'qpsPerCpu' | 'rest'>>();
    for (const c of order) t.set(c.name, await throughput(c, queries));
    for (const c of order) {
      const round = { ...t.get(c.name)!, ...(await latency(c, queries, dir)) };
      results.get(c.name)!.push(round);
      console.log(
        `round ${r + 1} ${c.name.padEnd(12)} ${fmt(round.qps)} QPS  ${fmt(round.qpsPerCpu)} q/CPU-s  ` +
          `p50 ${round.p50.toFixed(0)} µs  p99 ${round.p99.toFixed(0)} µs  ` +
          `${round.cpuUsAt20k.toFixed(1)} CPU-µs/q at 20k  lost ${round.lost}  rest ${round.rest.toFixed(2)} cores`,
      );
    }
  }

  // Metrics on ÷ off: both at once on one CPU, each with its own dnsperf on the others.
  const off = contenders.find((c) => c.name === 'cnmd')!;
  const on = contenders.find((c) => c.name === 'cnmd-metrics')!;
  const cpuCount = Number(execFileSync('nproc').toString());
  const serverCpu = String(cpuCount - 1);
  const clientCpus = cpuCount > 1 ? `0-${cpuCount - 2}` : '0';
  const qpsOnOff: number[] = [];
  for (const c of [off, on]) execFileSync('taskset', ['-a', '-p', '-c', serverCpu, String(c.pid)]);
  try {
    for (let i = 0; i < PAIRS; i++) {
      const [x, y] = await Promise.all([off, on].map((c) => throughput(c, queries, PAIR_SECONDS, clientCpus)));
      qpsOnOff.push(y!.qpsPerCpu / x!.qpsPerCpu);
      console.log(
        `pair ${i + 1} on CPU ${serverCpu}: metrics off ${fmt(x!.qps)} QPS ${fmt(x!.qpsPerCpu)} q/CPU-s, ` +
          `on ${fmt(y!.qps)} QPS ${fmt(y!.qpsPerCpu)} q/CPU-s: ${(y!.qpsPerCpu / x!.qpsPerCpu).toFixed(3)}`,
      );
    }
  } finally {
    for (const c of [off, on]) execFileSync('taskset', ['-a', '-p', '-c', `0-${cpuCount - 1}`, String(c.pid)]);
  }
  const closedLoop = results.get('cnmd')!.map((x, i) => results.get('cnmd-metrics')![i]!.qps / x.qps);

  const summary: Record<string, Record<keyof Round, number>> = {};
  console.log(`\nmedians over ${ROUNDS} rounds (spread: (max - min) / median)`);
  for (const [name, rounds] of results) {
    const keys = ['qps', 'qpsPerCpu', 'p50', 'p99', 'cpuUsAt20k', 'qpsPerCpuAt20k', 'lost', 'rest'] as const;
    summary[name] = Object.fromEntries(keys.map((k) => [k, median(rounds.map((x) => x[k]))])) as Record<
      keyof Round,
      number
    >;
    const spread = (k: keyof Round) => {
      const xs = rounds.map((x) => x[k]);
      return `${((100 * (Math.max(...xs) - Math.min(...xs))) / median(xs)).toFixed(0)}%`;
    };
    const s = summary[name]!;
    console.log(
      `${name.padEnd(12)} ${fmt(s.qps)} QPS (±${spread('qps')})  ${fmt(s.qpsPerCpu)} q/CPU-s (±${spread('qpsPerCpu')})  ` +
        `p50 ${s.p50.toFixed(0)} µs (±${spread('p50')})  p99 ${s.p99.toFixed(0)} µs (±${spread('p99')})  ` +
        `${s.cpuUsAt20k.toFixed(1)} CPU-µs/q at 20k  rest ${s.rest.toFixed(2)} cores`,
    );
  }
  console.log(`load average after: ${readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ')}`);
  const cnmd = summary['cnmd']!;
  const dnsmasq = summary['dnsmasq']!;
  const transport = summary['transport']!;
  const round = (x: number) => Math.round(x);
  // Within one round the two ran a few seconds apart: their ratio suffers less from drift.
  const paired = results.get('cnmd')!.map((x, i) => x.qpsPerCpu / results.get('dnsmasq')![i]!.qpsPerCpu);
  console.log(`cnmd / dnsmasq per CPU-second, round by round: ${paired.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`cnmd metrics on / off, q/CPU-s at once, pair by pair: ${qpsOnOff.map((x) => x.toFixed(3)).join(' ')}`);
  console.log(
    `cnmd metrics on / off, closed-loop QPS, round by round: ${closedLoop.map((x) => x.toFixed(3)).join(' ')}`,
  );
  console.log(
    JSON.stringify({
      bench: 'dns',
      cnmd_qps: round(cnmd.qps),
      cnmd_qps_per_cpu_s: round(cnmd.qpsPerCpu),
      // paced: dnsperf -Q paced_qps, as in the latency runs; above, as fast as it can (closed loop)
      cnmd_qps_per_cpu_s_paced: round(cnmd.qpsPerCpuAt20k),
      dnsmasq_qps: round(dnsmasq.qps),
      dnsmasq_qps_per_cpu_s: round(dnsmasq.qpsPerCpu),
      dnsmasq_qps_per_cpu_s_paced: round(dnsmasq.qpsPerCpuAt20k),
      paced_qps: RATE,
      ratio_per_cpu: Number((cnmd.qpsPerCpu / dnsmasq.qpsPerCpu).toFixed(3)),
      ratio_per_cpu_paced: Number((cnmd.qpsPerCpuAt20k / dnsmasq.qpsPerCpuAt20k).toFixed(3)),
      cnmd_p50_us: round(cnmd.p50),
      dnsmasq_p50_us: round(dnsmasq.p50),
      cnmd_p99_us: round(cnmd.p99),
      dnsmasq_p99_us: round(dnsmasq.p99),
      ratio_per_cpu_min: Number(Math.min(...paired).toFixed(3)),
      transport_qps_per_cpu_s: round(transport.qpsPerCpu),
      transport_p50_us: round(transport.p50),
      metrics_on_qps_ratio: Number(median(qpsOnOff).toFixed(3)),
      metrics_on_qps_ratio_min: Number(Math.min(...qpsOnOff).toFixed(3)),
      metrics_on_closed_loop_qps_ratio: Number(median(closedLoop).toFixed(3)),
      metrics_on_p50_us: round(summary['cnmd-metrics']!.p50),
      metrics_pairs: PAIRS,
      rounds: ROUNDS,
    }),
  );
}

function fmt(x: number): string {
  return Math.round(x).toLocaleString('en-US').padStart(9);
}

const dir = await mkdtemp(join(tmpdir(), 'cnmd-dns-bench-'));
await chmod(dir, 0o755); // dnsmasq reads its hosts file after dropping to user nobody
const cleanup = async () => {
  await stopAll();
  await rm(dir, { recursive: true, force: true });
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void cleanup().finally(() => process.exit(130)));
}
try {
  await main(dir);
} finally {
  await cleanup();
}
