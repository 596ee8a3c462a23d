// The repo's docker-compose.yml on a real engine, as a user runs it: cnmd built from the
// Dockerfile, three web replicas and a client networked by cnmd alone. Everything is asked from
// inside the client, with the names of this project's own containers only (anything else would go
// to the upstream resolver). The images build on the local base that e2e/scripts/docker-base-image.sh
// makes (there is no registry here). The dockerd restart runs only with CNMD_TEST_DOCKERD_RESTART=1,
// on an engine the run started itself (.ci/run always does, and refuses to use another one): an
// engine someone else runs may be shared with other work.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const env = { ...process.env, DOCKER_CONFIG: process.env.DOCKER_CONFIG ?? '/tmp/cnmd-docker/dockercfg' };
const config = JSON.parse(readFileSync(join(repo, 'compose/cnmd.json'), 'utf8')) as { services: { vip: string }[] };
const project = `cnmdc-${randomBytes(3).toString('hex')}`;

interface Result {
  code: number;
  out: string;
  err: string;
}

function sh(cmd: string, args: string[], extraEnv: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...env, ...extraEnv }, cwd: repo, maxBuffer: 64 << 20 }, (err, out, errOut) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out, err: errOut }),
    );
  });
}

async function ok(cmd: string, ...args: string[]): Promise<string> {
  const r = await sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.err}`);
  return r.out;
}

let images: Record<string, string> = {};
const compose = (...args: string[]) => sh('docker', ['compose', '-p', project, ...args], images);
const inClient = (...cmd: string[]) => sh('docker', ['exec', `${project}-client-1`, ...cmd]);
/** cnmd's CLI in its container. */
const cnmd = (...args: string[]) => ok('docker', 'exec', `${project}-cnmd-1`, 'node', 'sidecar/bin/cnmd.js', ...args);
const lines = (s: string) => s.split('\n').filter(Boolean).sort();

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms${last ? ` (${last})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The running web replicas: name -> { hostname, address on the demo network }. */
async function replicas(): Promise<Map<string, { host: string; ip: string }>> {
  const names = lines(
    await ok(
      'docker',
      'ps',
      '--filter',
      `label=com.docker.compose.project=${project}`,
      '--filter',
      'label=com.docker.compose.service=web',
      '--format',
      '{{.Names}}',
    ),
  );
  const each = await Promise.all(
    names.map(async (n) => {
      const host = (await ok('docker', 'inspect', '-f', '{{.Config.Hostname}}', n)).trim();
      return [n, { host, ip: await address(n) }] as const;
    }),
  );
  return new Map(each);
}

/** A container's IPv4 address on eth0 (which cnmd made). */
async function address(name: string): Promise<string> {
  const out = await ok('docker', 'exec', name, 'ip', '-4', '-o', 'addr', 'show', 'eth0');
  return out.split(/\s+/)[3]?.split('/')[0] ?? '';
}

/**
 * tasks.web as dig in the client sees it, once it has n addresses; the wait is timed inside the
 * client (from when the exec starts), so the engine's exec latency does not count.
 */
async function tasksWithin(n: number, ms: number): Promise<string[]> {
  const script = `end=$(( $(date +%s%N) / 1000000 + ${ms} ))
    while :; do
      a=$(dig +short @127.0.0.11 tasks.web)
      [ "$(printf '%s' "$a" | grep -c .)" = ${n} ] && { echo "$a"; exit 0; }
      [ $(( $(date +%s%N) / 1000000 )) -gt $end ] && { echo "$a"; exit 1; }
      sleep 0.02
    done`;
  const r = await inClient('sh', '-c', script);
  if (r.code !== 0) throw new Error(`tasks.web: not ${n} addresses within ${ms} ms: ${JSON.stringify(r.out)}`);
  return lines(r.out);
}

/** The replicas that answer `curl http://web/` over n requests (new connections each). */
async function answering(n: number): Promise<string[]> {
  const script = `for i in $(seq ${n}); do curl -s --max-time 2 http://web/ || echo "curl exit $?"; done`;
  return [...new Set(lines((await inClient('sh', '-c', script)).out))];
}

const hosts = (m: Map<string, { host: string }>) => [...m.values()].map((r) => r.host).sort();

async function up(...args: string[]): Promise<void> {
  const r = await compose('up', '-d', ...args);
  if (r.code !== 0) throw new Error(`compose up ${args.join(' ')}: ${r.err}`);
}

beforeAll(async () => {
  const [base, demo] = (await ok('bash', 'e2e/scripts/docker-base-image.sh')).trim().split(' ');
  images = { CNMD_BASE_IMAGE: base!, CNMD_DEMO_IMAGE: demo!, CNMD_IMAGE: 'cnmd-test/cnmd:local' };
  await up('--build');
  await tasksWithin(3, 30_000);
}, 900_000);

afterAll(async () => {
  await sh('docker', ['rm', '-f', `${project}-bad`]);
  await compose('down', '-v', '-t', '1', '--remove-orphans');
});

describe.sequential('docker compose up of the repo', () => {
  it('names answer in the client: web its VIP, tasks.web the replicas, a container name, an alias', async () => {
    const services = JSON.parse(await cnmd('service', 'ls', '--json')) as { name: string; vip?: string }[];
    const vip = services.find((s) => s.name === 'web')?.vip;
    expect(vip).toBe(config.services[0]?.vip); // compose/cnmd.json declares it
    expect((await inClient('getent', 'hosts', 'web')).out.split(/\s+/)[0]).toBe(vip);
    expect((await inClient('dig', '+short', '@127.0.0.11', 'web')).out.trim()).toBe(vip);
    const reps = await replicas();
    expect([...reps.values()].map((r) => r.ip)).not.toContain(vip);
    expect(lines((await inClient('dig', '+short', '@127.0.0.11', 'tasks.web')).out)).toEqual(
      [...reps.values()].map((r) => r.ip).sort(),
    );
    expect((await inClient('getent', 'hosts', `${project}-web-1`)).out.split(/\s+/)[0]).toBe(
      reps.get(`${project}-web-1`)?.ip,
    );
    // The client's alias, from a replica.
    const clientIp = (await inClient('ip', '-4', '-o', 'addr', 'show', 'eth0')).out.split(/\s+/)[3]?.split('/')[0];
    const r = await sh('docker', ['exec', `${project}-web-1`, 'getent', 'hosts', 'console']);
    expect(r.out.split(/\s+/)[0]).toBe(clientIp);
  });

  it('curl http://web/ reaches all three replicas', async () => {
    const reps = await replicas();
    expect(await answering(12)).toEqual(hosts(reps));
  });

  it('scaling web to 5 and back to 2: DNS and the load balancer follow within a second', async () => {
    await up('--no-recreate', '--scale', 'web=5');
    await tasksWithin(5, 1_000);
    let reps = await replicas();
    expect(reps.size).toBe(5);
    expect(await answering(20)).toEqual(hosts(reps));
    await up('--no-recreate', '--scale', 'web=2');
    await tasksWithin(2, 1_000);
    reps = await replicas();
    expect(reps.size).toBe(2);
    expect(await answering(10)).toEqual(hosts(reps));
  });

  it('a stopped task gets no new request, and is back when started again', async () => {
    const reps = await replicas();
    const [stopped, kept] = [...reps.keys()];
    await ok('docker', 'stop', '-t', '1', stopped!);
    await tasksWithin(1, 1_000);
    expect(await answering(10)).toEqual([reps.get(kept!)!.host]);
    await ok('docker', 'start', stopped!);
    await tasksWithin(2, 5_000);
    expect(await answering(10)).toEqual(hosts(reps));
  });

  it('a container with a bad label runs untouched, and the log says why', async () => {
    await ok(
      'docker',
      'run',
      '-d',
      '--name',
      `${project}-bad`,
      '--network',
      'none',
      '--label',
      'cnmd.networks=demo',
      '--label',
      'cnmd.bogus=1',
      images.CNMD_DEMO_IMAGE!,
      'sleep',
      'infinity',
    );
    const logged = await until('the log line', 5_000, async () => {
      const r = await sh('docker', ['logs', `${project}-cnmd-1`]);
      return r.err.split('\n').find((l) => l.includes(`${project}-bad`));
    });
    expect(logged).toMatch(/cnmd\.bogus/);
    expect((await ok('docker', 'exec', `${project}-bad`, 'ip', '-o', 'link')).trim().split('\n')).toHaveLength(1);
    expect(await ok('docker', 'exec', `${project}-bad`, 'cat', '/etc/resolv.conf')).not.toMatch(/127\.0\.0\.11/);
    await ok('docker', 'rm', '-f', `${project}-bad`);
  });

  it('kill -9 of cnmd and a fresh start: it reconciles, nothing is left twice, names still answer', async () => {
    await ok('docker', 'kill', '-s', 'KILL', `${project}-cnmd-1`);
    await up('--no-recreate', '--scale', 'web=2'); // starts it again unless its restart policy did
    await tasksWithin(2, 10_000);
    const reps = await replicas();
    expect(await answering(10)).toEqual(hosts(reps));
    // Each container has lo and one eth0, and cnmd one endpoint per container: none twice, none stray.
    const names = [...reps.keys(), `${project}-client-1`];
    for (const n of names) {
      const links = lines(await ok('docker', 'exec', n, 'ip', '-o', 'link')).map(
        (l) => l.split(':')[1]!.trim().split('@')[0],
      );
      expect(links.sort()).toEqual(['eth0', 'lo']);
    }
    const eps = JSON.parse(await cnmd('ps', '--json')) as { name?: string; sandbox: string }[];
    const containers = eps.filter((e) => !e.sandbox.includes('cnmd-lb-')); // not the load balancer's own
    expect(containers.map((e) => e.name).sort()).toEqual(names.sort());
  });

  it.runIf(process.env.CNMD_TEST_DOCKERD_RESTART === '1')('a dockerd restart: cnmd reconnects', async () => {
    await ok('bash', 'e2e/scripts/docker-engine.sh', 'restart');
    await up('--no-recreate', '--scale', 'web=3');
    await tasksWithin(3, 15_000);
    const reps = await replicas();
    expect(await answering(12)).toEqual(hosts(reps));
  });

  it('compose down -v leaves no container, network or volume of the project', async () => {
    expect((await compose('down', '-v', '-t', '1', '--remove-orphans')).code).toBe(0);
    const label = `label=com.docker.compose.project=${project}`;
    expect((await ok('docker', 'ps', '-aq', '--filter', label)).trim()).toBe('');
    expect((await ok('docker', 'network', 'ls', '-q', '--filter', label)).trim()).toBe('');
    expect((await ok('docker', 'volume', 'ls', '-q', '--filter', label)).trim()).toBe('');
  });
});
