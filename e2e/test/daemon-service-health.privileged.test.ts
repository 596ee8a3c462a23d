// Health checks of services through the daemon: a task whose check fails leaves the VIP's
// rotation, the `tasks.` answers and (dnsrr) the name's answers, `cnmd service backends` says
// so, and it comes back once it passes again. The probes run in the network's load-balancer
// sandbox.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestHost } from '../src/daemon-harness.js';
import type { Netns } from '../src/netns.js';
import { NsServer } from '../src/servers.js';
import { ServiceLab } from '../src/service-lab.js';

let lab: ServiceLab;
let host: TestHost;
let client: Netns;

beforeAll(async () => {
  lab = await ServiceLab.start('hnet', '--subnet', '10.106.0.0/24');
  ({ host, client } = lab);
});
afterAll(() => lab?.close());

const curl = (url: string) => lab.curl(url);
const dig = (name: string) =>
  client
    .exec('dig', ['@127.0.0.11', '+short', '+time=2', '+tries=1', name])
    .then((s) => s.trim().split('\n').filter(Boolean).sort());

/** Polls `fn` until it returns true (the checks take a few intervals), for at most `ms`. */
async function until(fn: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A task serving its name on 80, and a health endpoint on 81 (returned, to be stopped). */
async function task(name: string, service: string): Promise<{ ns: Netns; ip: string; health: NsServer }> {
  const ns = await lab.sandbox();
  lab.track(await NsServer.http(ns, 80, name));
  const health = await NsServer.http(ns, 81, 'ok');
  lab.track(health);
  const out = await host.ok('attach', ns.name, '--network', 'hnet', '--name', name, '--service', service);
  return { ns, ip: out.split(' ')[1]!, health };
}

type Backend = { name: string; health?: string };
const health = async (svc: string) =>
  Object.fromEntries((await host.json<Backend[]>('service', 'backends', svc)).map((b) => [b.name, b.health ?? 'none']));

async function spread(url: string, n = 12): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add(await curl(url));
  return [...seen].sort();
}

it('a vip service: an unhealthy task leaves the rotation and tasks., and comes back', { timeout: 60_000 }, async () => {
  await host.ok(
    'service',
    'create',
    'web',
    '--network',
    'hnet',
    '--port',
    '80/tcp',
    '--health',
    'http:81/healthz,interval=200ms,timeout=100ms,rise=2,fall=2',
  );
  const t1 = await task('web-1', 'web');
  const t2 = await task('web-2', 'web');
  await task('web-3', 'web');
  expect(await health('web')).toEqual({ 'web-1': 'healthy', 'web-2': 'healthy', 'web-3': 'healthy' });
  expect(await spread('http://web/')).toEqual(['web-1', 'web-2', 'web-3']);

  await t2.health.stop();
  await until(async () => (await health('web'))['web-2'] === 'unhealthy');
  // Its port 80 still serves: only the check keeps it out.
  expect(await spread('http://web/')).toEqual(['web-1', 'web-3']);
  expect(await dig('tasks.web')).not.toContain(t2.ip);
  expect(await dig('tasks.web')).toContain(t1.ip);
  expect((await host.ok('service', 'backends', 'web')).split('\n').find((l) => l.startsWith('web-2'))).toMatch(
    /unhealthy/,
  );

  const back = await NsServer.http(t2.ns, 81, 'ok');
  lab.track(back);
  await until(async () => (await health('web'))['web-2'] === 'healthy');
  expect(await spread('http://web/')).toEqual(['web-1', 'web-2', 'web-3']);
  expect(await dig('tasks.web')).toContain(t2.ip);
});

it('a dnsrr service: an unhealthy task leaves the answers, and comes back', { timeout: 60_000 }, async () => {
  await host.ok(
    'service',
    'create',
    'api',
    '--network',
    'hnet',
    '--mode',
    'dnsrr',
    '--health',
    'tcp:81,interval=200ms,timeout=100ms,rise=1,fall=2',
  );
  const a1 = await task('api-1', 'api');
  const a2 = await task('api-2', 'api');
  expect(await dig('api')).toEqual([a1.ip, a2.ip].sort());
  await a1.health.stop();
  await until(async () => (await health('api'))['api-1'] === 'unhealthy');
  expect(await dig('api')).toEqual([a2.ip]);
  expect(await dig('tasks.api')).toEqual([a2.ip]);
  lab.track(await NsServer.http(a1.ns, 81, 'ok'));
  await until(async () => (await health('api'))['api-1'] === 'healthy');
  expect(await dig('api')).toEqual([a1.ip, a2.ip].sort());
});

it('without --health every task counts, and backends shows no health', async () => {
  await host.ok('service', 'create', 'plain', '--network', 'hnet', '--port', '80/tcp');
  await task('plain-1', 'plain');
  expect(await health('plain')).toEqual({ 'plain-1': 'none' });
});

it('probes from the load-balancer sandbox: tasks on macvlan, which the host cannot reach', {
  timeout: 60_000,
}, async () => {
  const lan = await lab.sandbox('cnmd-lan');
  await host.ns.exec('ip', ['link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'router0', 'netns', lan.name]);
  await host.ns.exec('ip', ['link', 'set', 'lan0', 'up']);
  await lan.exec('ip', ['link', 'set', 'router0', 'up']);
  await host.ok('network', 'create', 'mlan', '--driver', 'macvlan', '--opt', 'parent=lan0', '--subnet', '192.0.2.0/24');
  await host.ok(
    'service',
    'create',
    'mac',
    '--network',
    'mlan',
    '--mode',
    'dnsrr',
    '--health',
    'tcp:81,interval=200ms,timeout=100ms,rise=1,fall=1',
  );
  const ns = await lab.sandbox();
  let health = await NsServer.http(ns, 81, 'ok');
  lab.track(health);
  const ip = (await host.ok('attach', ns.name, '--network', 'mlan', '--name', 'mac-1', '--service', 'mac')).split(
    ' ',
  )[1]!;
  expect(await host.ns.exec('curl', ['-s', '--max-time', '1', `http://${ip}:81/`]).catch(() => 'unreachable')).toBe(
    'unreachable',
  );
  const state = async () => (await host.json<Backend[]>('service', 'backends', 'mac'))[0]?.health;
  await health.stop();
  await until(async () => (await state()) === 'unhealthy');
  // Back to healthy: a probe reached it, and not from the host.
  health = await NsServer.http(ns, 81, 'ok');
  lab.track(health);
  await until(async () => (await state()) === 'healthy');
  await host.ok('detach', ns.name);
  await host.ok('service', 'rm', 'mac');
  await host.ok('network', 'rm', 'mlan');
});
