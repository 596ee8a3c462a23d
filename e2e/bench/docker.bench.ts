// npm run bench -w @cnmd/e2e -- docker: cnmd beside the real Docker engine. The daemon runs in a
// simulated host namespace (as in the tests) and follows the engine, scoped to this run's
// containers. Measured in one run:
// - ready: from the engine's start event of a labelled container to its name answering from
//   another labelled container (a UDP query every millisecond from inside that container's
//   namespace), p50/p99 over 50 containers; beside it the window until the container's own
//   resolver answers, and the time from invoking `docker start`;
// - queries per second: dnsperf inside a labelled container against cnmd at 127.0.0.11, and
//   inside a container on a user-defined Docker network against Docker's embedded DNS, with the
//   same 50 names (this run's containers; aliases of one container on the Docker side); in
//   rounds, each server once per round, which goes first alternating; medians of the rounds,
//   and queries per CPU-second of each server's process (CPU ticks per `getconf CLK_TCK`).
// Run as root with the engine up (../shared/recipes/docker-engine.sh). Everything it made is
// removed at the end, also when it fails.
import { execFile, execFileSync } from 'node:child_process';
import type dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bindUdpIn } from '@cnmd/sidecar';
import { TestHost } from '../src/daemon-harness.js';
import { DOCKER_SOCKET, DockerLab, docker, dockerOk, TEST_IMAGE } from '../src/docker.js';

const exec = promisify(execFile);
const N = Number(process.env.CNMD_BENCH_CONTAINERS ?? 50);
const SECONDS = Number(process.env.CNMD_BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.CNMD_BENCH_ROUNDS ?? 5);
const NET = 'bench';
const wallMs = () => performance.timeOrigin + performance.now();
/** Clock ticks per second of /proc/PID/stat's times (sysconf(_SC_CLK_TCK); 100 on most, not all). */
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString());

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 10) / 10;
};

/** An A query for `name` (RFC 1035 4.1), recursion desired. */
function aQuery(id: number, name: string): Buffer {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  const head = Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([head, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/** Queries 127.0.0.11 for `name` every millisecond from `sock` until an answer with a record; its wall time. */
function firstAnswer(sock: dgram.Socket, name: string, timeoutMs = 30_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let id = 0;
    const onMessage = (m: Buffer) => {
      if ((m[3]! & 0x0f) === 0 && m.readUInt16BE(6) > 0) done(undefined, wallMs());
    };
    const timer = setInterval(() => sock.send(aQuery(id++ & 0xffff, name), 53, '127.0.0.11', () => {}), 1);
    const limit = setTimeout(() => done(new Error(`${name} did not answer in ${timeoutMs} ms`)), timeoutMs);
    const done = (err: Error | undefined, t?: number) => {
      clearInterval(timer);
      clearTimeout(limit);
      sock.off('message', onMessage);
      if (err) reject(err);
      else resolve(t!);
    };
    sock.on('message', onMessage);
  });
}

/**
 * The same from a fresh socket per query, as a stub resolver does (a random source port each
 * time): one socket would stay on the conntrack entry its first query made before cnmd's NAT
 * rule for 127.0.0.11 existed, and never reach the resolver.
 */
function firstAnswerFresh(netns: string, name: string, timeoutMs = 30_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let over = false;
    const send = async () => {
      const sock = await bindUdpIn(netns, '0.0.0.0', 0).catch(() => undefined);
      if (!sock) return;
      sock.on('message', (m: Buffer) => {
        if ((m[3]! & 0x0f) === 0 && m.readUInt16BE(6) > 0) done(undefined, wallMs());
      });
      sock.send(aQuery(1, name), 53, '127.0.0.11', () => {});
      setTimeout(() => sock.close(), 200);
    };
    const timer = setInterval(() => void send(), 1);
    const limit = setTimeout(() => done(new Error(`${name} did not answer in ${timeoutMs} ms`)), timeoutMs);
    const done = (err: Error | undefined, t?: number) => {
      if (over) return;
      over = true;
      clearInterval(timer);
      clearTimeout(limit);
      if (err) reject(err);
      else resolve(t!);
    };
  });
}

function engine(path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath: DOCKER_SOCKET, path: `/v1.41${path}` }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
}

const sandboxOf = async (name: string) =>
  ((await engine(`/containers/${name}/json`)) as { NetworkSettings: { SandboxKey: string } }).NetworkSettings
    .SandboxKey;

/** The engine's start events of this run's containers: name → the event's wall time in ms. */
function followStarts(scope: string, onStart: (name: string, ms: number) => void): http.ClientRequest {
  const filters = JSON.stringify({ type: ['container'], event: ['start'], label: [`cnmd.scope=${scope}`] });
  const req = http.get({ socketPath: DOCKER_SOCKET, path: `/v1.41/events?filters=${encodeURIComponent(filters)}` });
  req.on('response', (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const ev = JSON.parse(buf.slice(0, nl)) as { Actor: { Attributes: { name: string } }; timeNano: number };
        buf = buf.slice(nl + 1);
        onStart(ev.Actor.Attributes.name, ev.timeNano / 1e6);
      }
    });
  });
  req.on('error', () => {});
  return req;
}

/** CPU seconds (user + system) a process has used: /proc/PID/stat fields 14 and 15, in clock ticks. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

/** dnsperf against 127.0.0.11 in `sandbox`, and the CPU the server process `pid` spent meanwhile. */
async function dnsperf(
  sandbox: string,
  file: string,
  pid: number,
): Promise<{ qps: number; perCpu: number; lost: string }> {
  const args = [`--net=${sandbox}`, 'dnsperf', '-s', '127.0.0.11', '-d', file, '-l', String(SECONDS)];
  const cpu0 = cpuSeconds(pid);
  const { stdout } = await exec('nsenter', [...args, '-c', '4', '-q', '200', '-T', '1'], { maxBuffer: 1 << 24 });
  const cpu = cpuSeconds(pid) - cpu0;
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(stdout)?.[1]);
  const completed = Number(/Queries completed:\s+(\d+)/.exec(stdout)?.[1]);
  const lost = /Queries lost:\s+(.*)/.exec(stdout)?.[1]?.trim() ?? '?';
  if (!(qps > 0)) throw new Error(`dnsperf gave no rate:\n${stdout}`);
  return { qps, perCpu: cpu > 0 ? completed / cpu : Number.NaN, lost };
}

export async function run(): Promise<void> {
  const lab = new DockerLab();
  const dir = await mkdtemp(join(tmpdir(), 'cnmd-dbench-'));
  const dockerNet = `${lab.prefix}-dn`;
  let host: TestHost | undefined;
  let events: http.ClientRequest | undefined;
  const opened: dgram.Socket[] = [];
  try {
    host = await TestHost.start({ dockerSocket: DOCKER_SOCKET, dockerScope: lab.scope });
    const probe = await lab.run('probe', { networks: NET });
    await lab.ready(probe);
    const fromProbe = await bindUdpIn(await sandboxOf(probe), '0.0.0.0', 0);
    opened.push(fromProbe);
    const names = Array.from({ length: N }, (_, i) => lab.name(`c${i}`));
    for (const name of names) {
      await dockerOk(
        ...['create', '--name', name, '--network', 'none', '--label', `cnmd.scope=${lab.scope}`],
        ...['--label', `cnmd.networks=${NET}`, TEST_IMAGE, 'sleep', '3600'],
      );
    }

    // Ready: the start event → the name answers from the probe; and → the container's own resolver answers.
    const starts = new Map<string, { ms: number; own: Promise<number> }>();
    events = followStarts(lab.scope, (name, ms) => {
      const own = sandboxOf(name).then((sandbox) => firstAnswerFresh(sandbox, probe));
      own.catch(() => {});
      starts.set(name, { ms, own });
    });
    await new Promise((r) => setTimeout(r, 300)); // the event stream is open
    const ready: number[] = [];
    const ownReady: number[] = [];
    const fromCli: number[] = [];
    for (const name of names) {
      const answered = firstAnswer(fromProbe, name);
      const t0 = wallMs();
      await dockerOk('start', name);
      const t = await answered;
      for (let i = 0; i < 100 && !starts.has(name); i++) await new Promise((r) => setTimeout(r, 10));
      const ev = starts.get(name);
      if (!ev) throw new Error(`no start event for ${name}`);
      ready.push(t - ev.ms);
      ownReady.push((await ev.own) - ev.ms);
      fromCli.push(t - t0);
    }
    console.log(
      `ready (start event → name answers from another container), ${N} containers: ` +
        `p50 ${pct(ready, 50)} ms, p99 ${pct(ready, 99)} ms, max ${pct(ready, 100)} ms`,
    );
    console.log(
      `own resolver (start event → 127.0.0.11 answers inside the container): p50 ${pct(ownReady, 50)} ms, ` +
        `p99 ${pct(ownReady, 99)} ms`,
    );
    console.log(`from invoking docker start → name answers: p50 ${pct(fromCli, 50)} ms, p99 ${pct(fromCli, 99)} ms`);

    // Queries per second, the same names on both sides.
    const file = join(dir, 'queries');
    await writeFile(file, names.map((n) => `${n} A\n`).join(''));
    await dockerOk('network', 'create', dockerNet);
    await dockerOk(
      ...['run', '-d', '--name', lab.name('dtarget'), '--label', `cnmd.scope=${lab.scope}`, '--network', dockerNet],
      ...names.flatMap((n) => ['--network-alias', n]),
      ...[TEST_IMAGE, 'sleep', '3600'],
    );
    const dq = await lab.run('dprobe', { none: false, args: ['--network', dockerNet] });
    const dqSandbox = await sandboxOf(dq);
    const check = await exec('nsenter', [`--net=${dqSandbox}`, 'dig', '+short', '@127.0.0.11', names[0]!]);
    if (!/^\d+\.\d+\.\d+\.\d+$/m.test(check.stdout)) throw new Error(`Docker's DNS does not answer ${names[0]}`);
    const probeSandbox = await sandboxOf(probe);
    // Both servers share two cores with dnsperf, and Docker's DNS (inside dockerd, Go) may use
    // several threads where cnmd has one: so rounds alternate, the medians are compared, and
    // queries per CPU-second of each server's process are printed beside.
    const dockerd = Number((await exec('pidof', ['dockerd'])).stdout.trim().split(/\s+/)[0]);
    const cnmd: number[] = [];
    const embedded: number[] = [];
    const cnmdCpu: number[] = [];
    const embeddedCpu: number[] = [];
    const daemon = host.pid!;
    const ofCnmd = () => dnsperf(probeSandbox, file, daemon);
    const ofDocker = () => dnsperf(dqSandbox, file, dockerd);
    for (let round = 0; round < ROUNDS; round++) {
      // Which goes first alternates too: the second of a round runs on what the first left
      // behind (warm caches, a busier or quieter machine).
      const cnmdFirst = round % 2 === 0;
      const [a, b] = cnmdFirst
        ? [await ofCnmd(), await ofDocker()]
        : await ofDocker().then(async (d) => [await ofCnmd(), d] as const);
      console.log(
        `round ${round + 1} (${cnmdFirst ? 'cnmd' : 'Docker'} first): ` +
          `cnmd ${Math.round(a.qps)} q/s, ${Math.round(a.perCpu)} q/CPU-s (lost ${a.lost}); ` +
          `Docker's embedded DNS ${Math.round(b.qps)} q/s, ${Math.round(b.perCpu)} q/CPU-s (lost ${b.lost})`,
      );
      cnmd.push(a.qps);
      embedded.push(b.qps);
      cnmdCpu.push(a.perCpu);
      embeddedCpu.push(b.perCpu);
    }
    const result = {
      bench: 'docker',
      ready_p50_ms: pct(ready, 50),
      ready_p99_ms: pct(ready, 99),
      cnmd_qps: Math.round(pct(cnmd, 50)),
      docker_dns_qps: Math.round(pct(embedded, 50)),
      // queries per CPU-second of the server's process (cnmd's daemon, dockerd), medians
      cnmd_q_per_cpu_s: Math.round(pct(cnmdCpu, 50)),
      docker_q_per_cpu_s: Math.round(pct(embeddedCpu, 50)),
      rounds: ROUNDS,
    };
    console.log(
      `cnmd ÷ Docker's DNS (medians of ${ROUNDS} rounds): ${(result.cnmd_qps / result.docker_dns_qps).toFixed(2)} q/s, ` +
        `${(result.cnmd_q_per_cpu_s / result.docker_q_per_cpu_s).toFixed(2)} per CPU-second`,
    );
    console.log(JSON.stringify(result));
  } catch (err) {
    console.error(`the daemon's log:\n${host?.log.split('\n').slice(-30).join('\n')}`);
    throw err;
  } finally {
    events?.destroy();
    for (const s of opened) {
      try {
        s.close();
      } catch {}
    }
    await lab.close();
    await docker('network', 'rm', dockerNet);
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  }
}
