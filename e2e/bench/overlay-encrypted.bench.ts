// npm run bench -w @cnmd/e2e -- overlay-encrypted: the encrypted overlay (#14). This host's
// kernel has no ESP, so on the host this starts the xfrm VM (e2e/scripts/test-vm.sh --bench) and
// runs itself there. Two simulated hosts and one NATS server (ClusterLab), two overlay networks
// between them, one clear and one encrypted (IPsec ESP, AES-GCM). Measured in one run:
// - encrypted_vs_clear_throughput: TCP throughput (iperf3, one stream, the first second left
//   out) from a container on host0 to one on host1, over each network, ROUNDS times, which goes
//   first swapping every round; the medians' ratio. Under qemu's software emulation both are far
//   below a real machine's, and AES-GCM is emulated too: the ratio is what this VM gives.
// - rotation_ms: a key rotation (POST /v1/networks/NAME/rotate-key: a new key, made primary,
//   the old one removed, each step waiting for both hosts) timed by the daemon, median of
//   ROTATIONS, each under load: an iperf3 stream and CONNS TCP connections that echo a message
//   every 20 ms.
// - connections_lost: of those connections, the ones that failed, or that waited a second or more
//   for an echo (a retransmission after a drop: a lost packet costs at least the 200 ms RTO),
//   during the rotations; the kernel's xfrm drop counters (no state, no policy, template
//   mismatch) are summed beside it as xfrm_drops.
// Everything it made is removed at the end, also when it fails.
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterLab } from '../src/cluster-lab.js';
import type { Netns } from '../src/netns.js';
import { load, median, printHostLogs, sleep, until } from './util.js';

const SECONDS = Number(process.env.CNMD_BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.CNMD_BENCH_ROUNDS ?? 3);
const ROTATIONS = Number(process.env.CNMD_BENCH_ROTATIONS ?? 3);
const CONNS = Number(process.env.CNMD_BENCH_CONNS ?? 20);
const ECHO_PORT = 7100;
const DROPS = ['XfrmInNoStates', 'XfrmOutNoStates', 'XfrmInTmplMismatch', 'XfrmOutPolBlock', 'XfrmInNoPols'];

// In a container on host1: echoes whatever arrives.
const ECHO = `require('node:net').createServer((s) => { s.on('error', () => {}); s.pipe(s); })
  .listen(Number(process.argv[1]), '0.0.0.0', () => process.stdout.write('listening\\n'));`;
// In a container on host0: N connections, each sending 32 bytes and waiting for them back, again
// 20 ms after each echo. On stdin's end: one JSON line, per connection its error (if any) and the
// longest wait for an echo in ms.
const CLIENTS = `const net = require('node:net');
const [ip, port, n] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const conns = []; let up = 0;
for (let i = 0; i < n; i++) {
  const c = { maxWait: 0, error: undefined, sent: 0n };
  const s = net.connect({ host: ip, port }, () => { if (++up === n) process.stdout.write('up\\n'); ping(); });
  const ping = () => { c.sent = process.hrtime.bigint(); s.write(Buffer.alloc(32, i)); };
  let got = 0;
  s.on('data', (d) => {
    got += d.length;
    if (got < 32) return;
    got -= 32;
    c.maxWait = Math.max(c.maxWait, Number(process.hrtime.bigint() - c.sent) / 1e6);
    setTimeout(ping, 20);
  });
  s.on('error', (e) => { c.error = e.code ?? String(e); });
  s.on('close', () => { c.error ??= 'closed'; });
  conns.push(c);
}
// A wait still going on counts too.
process.stdin.resume().on('end', () => {
  const now = process.hrtime.bigint();
  for (const c of conns) if (c.sent) c.maxWait = Math.max(c.maxWait, Number(now - c.sent) / 1e6);
  process.stdout.write(JSON.stringify(conns.map(({ maxWait, error }) => ({ maxWait, error }))) + '\\n');
  process.exit(0);
});`;

interface Ctr {
  ns: Netns;
  ip: string;
}

const procs = new Set<ChildProcess>();

/** A process in a namespace (nsenter execs in place), killed at the end if still running. */
function start(ns: Netns, cmd: string, args: string[]): { proc: ChildProcess; out: () => string } {
  const proc = spawn('nsenter', [`--net=${ns.path}`, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  proc.stdin!.on('error', () => {});
  procs.add(proc);
  proc.once('exit', () => procs.delete(proc));
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d));
  proc.stderr!.on('data', (d: Buffer) => (out += d));
  return { proc, out: () => out };
}

const exited = (p: ChildProcess) =>
  p.exitCode !== null ? Promise.resolve(p.exitCode) : new Promise<number | null>((r) => p.once('exit', r));

/** Bits per second received, from iperf3 run from `from` to `to` for SECONDS (the first omitted). */
async function iperf(from: Ctr, to: Ctr): Promise<number> {
  const server = start(to.ns, 'iperf3', ['-s', '-1', '--forceflush']);
  await until('iperf3 -s', () => server.out().includes('listening'), 15_000);
  const client = start(from.ns, 'iperf3', ['-c', to.ip, '-t', String(SECONDS), '-O', '1', '--json']);
  const code = await exited(client.proc);
  await exited(server.proc);
  const r = JSON.parse(client.out()) as { end?: { sum_received?: { bits_per_second: number } }; error?: string };
  if (code !== 0 || r.error || !r.end?.sum_received) throw new Error(`iperf3 to ${to.ip}: ${r.error ?? code}`);
  return r.end.sum_received.bits_per_second;
}

export async function run(): Promise<void> {
  if (!process.env.CNMD_IN_VM) {
    // The VM sees this checkout: the same bench, built, runs there.
    const script = join(dirname(fileURLToPath(import.meta.url)), '../../scripts/test-vm.sh');
    const vm = spawn('bash', [script, '--bench', 'overlay-encrypted'], { stdio: 'inherit' });
    process.exitCode = (await exited(vm)) ?? 1;
    return;
  }
  // As the vm project's globalSetup: the VM's /etc is the host's, read-only, and the daemon
  // writes /etc/netns/NAME/resolv.conf for each sandbox.
  (await import('../src/vm-setup.js')).default();
  let lab: ClusterLab | undefined;
  try {
    console.log(`overlay-encrypted: 2 hosts in the VM, iperf3 ${SECONDS} s x ${ROUNDS}; load ${load()}`);
    // A grace longer than a daemon's start in the VM: nothing here is a host gone.
    const t0 = Date.now();
    const step = (what: string) => console.log(`  [${((Date.now() - t0) / 1000).toFixed(0)} s] ${what}`);
    lab = await ClusterLab.start({ hosts: 2, nats: 1, daemonArgs: ['--cluster-grace-ms', '60000'] });
    step('the lab is up: 2 daemons, a NATS server');
    const api = async <T>(i: number, method: string, path: string, body?: unknown): Promise<T> => {
      const r = await lab!.hosts[i]!.api<T>(method, `/v1${path}`, body);
      if (r.status >= 400) throw new Error(`${method} ${path} on host${i}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    await api(0, 'POST', '/networks', { name: 'clear', driver: 'overlay', subnet: '10.70.0.0/24' });
    await api(0, 'POST', '/networks', {
      name: 'secret',
      driver: 'overlay',
      subnet: '10.71.0.0/24',
      options: { encrypted: '' },
    });
    await until(
      'both networks on host1',
      async () =>
        (await lab!.hosts[1]!.api('GET', '/v1/networks/clear')).status === 200 &&
        (await lab!.hosts[1]!.api('GET', '/v1/networks/secret')).status === 200,
      120_000,
    );
    const ctr = async (i: number, network: string): Promise<Ctr> => {
      const ns = await lab!.sandbox(i, `cnmd-oe${i}`);
      const ep = await api<{ ip: string }>(i, 'POST', '/endpoints', {
        sandbox: ns.name,
        network,
        name: `${network}${i}`,
      });
      return { ns, ip: ep.ip };
    };
    step('both networks on both hosts');
    const clear = [await ctr(0, 'clear'), await ctr(1, 'clear')] as const;
    const secret = [await ctr(0, 'secret'), await ctr(1, 'secret')] as const;
    // Both ways reachable before anything is timed (the peers' entries written on both hosts).
    await until(
      'the containers reach one another',
      async () => {
        for (const [a, b] of [clear, secret]) {
          const ok = await a.ns.exec('timeout', ['3', 'ping', '-c', '1', '-W', '1', b.ip]).then(
            () => true,
            () => false,
          );
          if (!ok) return false;
        }
        return true;
      },
      120_000,
    );

    step('the containers reach one another on both networks');
    const bps = { clear: [] as number[], secret: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 ? (['secret', 'clear'] as const) : (['clear', 'secret'] as const);
      for (const k of order) {
        const [a, b] = k === 'clear' ? clear : secret;
        bps[k].push(await iperf(a, b));
      }
      console.log(
        `round ${r + 1}: clear ${(bps.clear.at(-1)! / 1e6).toFixed(0)} Mbit/s, encrypted ${(bps.secret.at(-1)! / 1e6).toFixed(0)} Mbit/s`,
      );
    }

    // Rotations under load: CONNS echoing connections and an iperf3 stream on the encrypted network.
    const stat = async (i: number) => {
      const text = await lab!.hosts[i]!.ns.exec('cat', ['/proc/net/xfrm_stat']);
      const m = Object.fromEntries(
        text
          .trim()
          .split('\n')
          .map((l) => l.trim().split(/\s+/) as [string, string]),
      );
      return DROPS.reduce((n, k) => n + Number(m[k] ?? 0), 0);
    };
    const drops0 = (await stat(0)) + (await stat(1));
    const echo = start(secret[1].ns, process.execPath, ['-e', ECHO, String(ECHO_PORT)]);
    await until('the echo server', () => echo.out().includes('listening'), 30_000);
    const clients = start(secret[0].ns, process.execPath, [
      '-e',
      CLIENTS,
      secret[1].ip,
      String(ECHO_PORT),
      String(CONNS),
    ]);
    await until('the connections', () => clients.out().includes('up'), 30_000);
    const server = start(secret[1].ns, 'iperf3', ['-s', '-1', '--forceflush']);
    await until('iperf3 -s', () => server.out().includes('listening'), 15_000);
    const stream = start(secret[0].ns, 'iperf3', ['-c', secret[1].ip, '-t', '600', '--json']);
    const rotations: number[] = [];
    for (let r = 0; r < ROTATIONS; r++) {
      await sleep(2000);
      const { ms, tag } = await api<{ ms: number; tag: number }>(r % 2, 'POST', '/networks/secret/rotate-key');
      rotations.push(ms);
      console.log(`rotation ${r + 1} (to key ${tag}, from host${r % 2}): ${ms} ms`);
    }
    await sleep(2000);
    stream.proc.kill('SIGINT');
    await exited(stream.proc);
    await exited(server.proc);
    clients.proc.stdin!.end();
    await exited(clients.proc);
    const conns = JSON.parse(clients.out().split('\n').filter(Boolean).at(-1)!) as {
      maxWait: number;
      error?: string;
    }[];
    const lost = conns.filter((c) => c.error || c.maxWait >= 1000);
    for (const c of lost) console.log(`connection lost: ${c.error ?? `an echo took ${c.maxWait.toFixed(0)} ms`}`);
    // Stopped by SIGINT, iperf3 says so as its error; the stream is lost if it said anything
    // else, or if a second of it carried nothing (a stall: packets dropped and sent again).
    const streamReport = JSON.parse(stream.out()) as { error?: string; intervals?: { sum: { bytes: number } }[] };
    const seconds = (streamReport.intervals ?? []).map((i) => i.sum.bytes);
    const streamError = streamReport.error?.startsWith('interrupt') ? undefined : (streamReport.error ?? undefined);
    const stalls = seconds.slice(0, -1).filter((b) => b === 0).length;
    const streamLost = streamError || stalls || seconds.length === 0 ? 1 : 0;
    if (streamLost) console.log(`the iperf3 stream failed: ${streamError ?? `${stalls} second(s) without a byte`}`);
    console.log(
      `the iperf3 stream over the rotations: ${seconds.length} s, the slowest second ${(Math.min(...seconds.slice(0, -1)) / 125_000).toFixed(1)} Mbit/s`,
    );
    const drops = (await stat(0)) + (await stat(1)) - drops0;
    console.log(
      `longest echo wait over ${CONNS} connections: ${Math.max(...conns.map((c) => c.maxWait)).toFixed(1)} ms; ` +
        `xfrm drops ${drops}; load ${load()}`,
    );
    const clearBps = median(bps.clear);
    const secretBps = median(bps.secret);
    console.log(
      JSON.stringify({
        bench: 'overlay-encrypted',
        encrypted_vs_clear_throughput: Number((secretBps / clearBps).toFixed(3)),
        clear_mbit_s: Math.round(clearBps / 1e6),
        encrypted_mbit_s: Math.round(secretBps / 1e6),
        rotation_ms: median(rotations),
        rotation_ms_max: Math.max(...rotations),
        connections_lost: lost.length + streamLost,
        xfrm_drops: drops,
      }),
    );
    if (lost.length + streamLost + drops > 0) process.exitCode = 1;
  } catch (err) {
    console.error(`overlay-encrypted: ${(err as Error).stack ?? err}`);
    printHostLogs(lab, 30);
    throw err;
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await lab?.close();
  }
}
