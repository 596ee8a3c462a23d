// The Docker source against the real engine: the daemon runs in a simulated host namespace
// (TestHost) and follows the engine; labelled `--network none` containers of local/busybox get
// their network from it. Each test's daemon sees only that test's containers (--docker-scope),
// and removes them, its networks and its namespaces at the end, pass or fail.
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { DOCKER_SOCKET, DockerLab, DockerProxy, dockerOk } from '../src/docker.js';

interface Endpoint {
  name?: string;
  network: string;
  ip: string;
  ifname: string;
}

async function setup(socket = DOCKER_SOCKET): Promise<{ host: TestHost; lab: DockerLab }> {
  const lab = new DockerLab();
  onTestFinished(() => lab.close());
  const host = await TestHost.start({ dockerSocket: socket, dockerScope: lab.scope });
  onTestFinished(() => host.close());
  return { host, lab };
}

/** The addresses `nslookup NAME 127.0.0.11` prints inside a container (none when it fails). */
async function lookup(lab: DockerLab, from: string, name: string): Promise<string[]> {
  const r = await lab.exec(from, 'nslookup', name, '127.0.0.11');
  if (r.code !== 0) return [];
  const answers = r.out.split('\n\n').slice(1).join('\n');
  return [...answers.matchAll(/^Address:\s+(\S+)$/gm)].map((m) => m[1]!).sort();
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const endpoints = (host: TestHost) => host.json<Endpoint[]>('ps');
const ipOf = async (host: TestHost, name: string) => (await endpoints(host)).find((e) => e.name === name)?.ip;

it('resolves a container by name and alias from another; a bad label or another network mode is left alone', async () => {
  const { host, lab } = await setup();
  const a = await lab.run('a', { networks: 'front', labels: { 'cnmd.aliases': 'alpha,db.alpha' } });
  const b = await lab.run('b', { networks: 'front' });
  const bad = await lab.run('bad', { networks: 'front@10.1.0.300' });
  const bridged = await lab.run('br', { networks: 'front', none: false });
  await lab.ready(a);
  await lab.ready(b);
  const ipA = await ipOf(host, a);
  expect(ipA).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  expect(await lookup(lab, b, a)).toEqual([ipA]);
  expect(await lookup(lab, b, 'alpha')).toEqual([ipA]);
  expect(await lookup(lab, b, 'db.alpha')).toEqual([ipA]);
  // The container's own view: eth0 with the address, a resolv.conf naming cnmd.
  expect((await lab.exec(a, 'ip', '-o', '-4', 'addr', 'show', 'eth0')).out).toContain(`${ipA}/`);
  // Left alone: no interface, the engine's resolv.conf, and one line each saying why.
  await eventually(
    async () => host.log,
    (log) => log.includes(bad) && log.includes(bridged),
  );
  expect((await lab.exec(bad, 'ip', '-o', 'link')).out).not.toContain('eth0');
  expect((await lab.exec(bad, 'cat', '/etc/resolv.conf')).out).not.toContain('127.0.0.11');
  expect(host.log).toMatch(
    new RegExp(`container ${bad} \\([0-9a-f]{12}\\) left alone: label cnmd.networks=.*10.1.0.300`),
  );
  expect(host.log).toMatch(new RegExp(`container ${bridged} .* left alone: network mode default`));
  expect(host.log.split('\n').filter((l) => l.includes(bad))).toHaveLength(1);
  expect((await endpoints(host)).map((e) => e.name).sort()).toEqual([a, b].sort());
});

it('a service label gives a VIP balanced over its tasks and tasks.NAME their addresses', async () => {
  const { host, lab } = await setup();
  const web = { networks: 'app', labels: { 'com.docker.compose.service': 'web', 'cnmd.ports': '80/tcp' } };
  const httpd = (n: string) => ['sh', '-c', `mkdir -p /w && echo ${n} > /w/index.html && exec httpd -f -p 80 -h /w`];
  const w1 = await lab.run('w1', { ...web, cmd: httpd('one') });
  const w2 = await lab.run('w2', { ...web, cmd: httpd('two') });
  const client = await lab.run('client', { networks: 'app' });
  for (const c of [w1, w2, client]) await lab.ready(c);
  const svc = await host.json<{ vip: string; backends: { address: string }[] }>('service', 'inspect', 'web');
  expect(await lookup(lab, client, 'web')).toEqual([svc.vip]);
  const tasks = [await ipOf(host, w1), await ipOf(host, w2)].sort();
  expect(await lookup(lab, client, 'tasks.web')).toEqual(tasks);
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++)
    seen.add((await lab.exec(client, 'timeout', '3', 'wget', '-qO-', 'http://web/')).out.trim());
  expect([...seen].sort()).toEqual(['one', 'two']);
});

it('a stopped container leaves DNS at once and comes back when started again', async () => {
  const { host, lab } = await setup();
  const a = await lab.run('a', { networks: 'n1' });
  const b = await lab.run('b', { networks: 'n1' });
  await lab.ready(a);
  await lab.ready(b);
  expect(await lookup(lab, b, a)).toHaveLength(1);
  await dockerOk('stop', '-t', '0', a);
  expect(
    await eventually(
      () => lookup(lab, b, a),
      (v) => v.length === 0,
      2000,
    ),
  ).toEqual([]);
  expect((await endpoints(host)).map((e) => e.name)).toEqual([b]);
  await dockerOk('start', a);
  await lab.ready(a);
  const ip = await ipOf(host, a);
  expect(await lookup(lab, b, a)).toEqual([ip]);
  expect((await endpoints(host)).filter((e) => e.name === a)).toHaveLength(1);
});

it('a command that waits for 127.0.0.11 in its resolv.conf finds the network ready; search and options are kept', async () => {
  const { host, lab } = await setup();
  const a = await lab.run('a', { networks: 'n1' });
  await lab.ready(a);
  const wait = 'until grep -q 127.0.0.11 /etc/resolv.conf; do sleep 0.05; done';
  const w = await lab.run('w', {
    networks: 'n1',
    args: ['--dns-search', 'corp.test', '--dns-opt', 'ndots:2'],
    cmd: ['sh', '-c', `${wait}; nslookup ${a} 127.0.0.11; sleep 3600`],
  });
  const logs = await eventually(
    () => dockerOk('logs', w),
    (out) => out.includes('Name:'),
  );
  expect(logs).toContain(`Address: ${await ipOf(host, a)}`);
  const conf = (await lab.exec(w, 'cat', '/etc/resolv.conf')).out;
  expect(conf.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
    'search corp.test',
    'options ndots:2',
    'nameserver 127.0.0.11',
    '',
  ]);
  // The engine writes its own again on a restart; cnmd's comes back with the network.
  await dockerOk('restart', '-t', '0', w);
  await lab.ready(w);
  expect((await lab.exec(w, 'cat', '/etc/resolv.conf')).out).toBe(conf);
});

it('after kill -9 of the daemon it reconciles with what changed meanwhile: no duplicates, no leaked links', async () => {
  const { host, lab } = await setup();
  const names = ['a', 'b', 'c', 'd'];
  const [a, b, c] = await Promise.all(names.slice(0, 3).map((n) => lab.run(n, { networks: 'n1,n2' })));
  for (const x of [a!, b!, c!]) await lab.ready(x);
  await host.kill9();
  await dockerOk('stop', '-t', '0', a!); // stopped while cnmd was away
  await dockerOk('rm', '-f', b!); // gone altogether
  await dockerOk('restart', '-t', '0', c!); // a new sandbox
  const d = await lab.run('d', { networks: 'n1,n2' }); // new
  await host.startDaemon();
  await lab.ready(c!);
  await lab.ready(d);
  const eps = await endpoints(host);
  expect(eps.map((e) => `${e.name}/${e.network}/${e.ifname}`).sort()).toEqual(
    [`${c}/n1/eth0`, `${c}/n2/eth1`, `${d}/n1/eth0`, `${d}/n2/eth1`].sort(),
  );
  for (const x of [c!, d]) {
    const links = (await lab.exec(x, 'ip', '-o', 'link')).out.match(/^\d+: (\w+)/gm);
    expect(links?.map((l) => l.split(': ')[1])).toEqual(['lo', 'eth0', 'eth1']);
  }
  expect(await lookup(lab, d, c!)).toEqual(
    eps
      .filter((e) => e.name === c)
      .map((e) => e.ip)
      .sort(),
  );
  expect(await lookup(lab, d, a!)).toEqual([]);
  expect(await lookup(lab, d, b!)).toEqual([]);
  // The host's veths are exactly those of the endpoints.
  const vcn = (await host.ns.exec('ip', ['-o', 'link'])).match(/vcn[0-9a-f]{10}/g) ?? [];
  expect(new Set(vcn).size).toBe(eps.length);
});

it('when the event stream breaks it reconnects with backoff and reconciles what it missed', async () => {
  const lab0 = new DockerLab();
  const proxy = await DockerProxy.start(join('/tmp', `${lab0.prefix}.sock`));
  onTestFinished(() => proxy.close());
  const { host, lab } = await setup(proxy.path);
  const a = await lab.run('a', { networks: 'n1' });
  const b = await lab.run('b', { networks: 'n1' });
  await lab.ready(a);
  await lab.ready(b);
  proxy.cut();
  await eventually(
    async () => host.log,
    (log) => log.includes('docker: the event stream ended') || /docker: .*retrying/.test(log),
  );
  await dockerOk('stop', '-t', '0', a); // its die event is lost
  const c = await lab.run('c', { networks: 'n1' }); // so is its start
  proxy.restore();
  await lab.ready(c);
  expect(
    await eventually(
      () => lookup(lab, c, a),
      (v) => v.length === 0,
    ),
  ).toEqual([]);
  expect(await lookup(lab, c, b)).toEqual([await ipOf(host, b)]);
  expect((await endpoints(host)).map((e) => e.name).sort()).toEqual([b, c].sort());
  expect(host.log.match(/docker: following/g)?.length).toBe(2);
});
