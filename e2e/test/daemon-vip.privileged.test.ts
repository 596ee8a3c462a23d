// VIP services through the daemon: the name answers a VIP from the network, and connections to
// it are balanced over the ready tasks by the network's load-balancer sandbox.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestHost } from '../src/daemon-harness.js';
import type { Netns } from '../src/netns.js';
import { NsServer } from '../src/servers.js';
import { ServiceLab } from '../src/service-lab.js';

let lab: ServiceLab;
let host: TestHost;
let client: Netns;

beforeAll(async () => {
  lab = await ServiceLab.start('vipnet', '--subnet', '10.104.0.0/24');
  ({ host, client } = lab);
});
afterAll(() => lab?.close());

const curl = (url: string) => lab.curl(url);

async function backend(name: string, service: string, ...extra: string[]): Promise<Netns> {
  const ns = await lab.sandbox();
  lab.track(await NsServer.http(ns, 80, name));
  await host.ok('attach', ns.name, '--network', 'vipnet', '--name', name, '--service', service, ...extra);
  return ns;
}

it('a VIP service answers its VIP and balances HTTP over every ready task', async () => {
  const vip = (await host.ok('service', 'create', 'web', '--network', 'vipnet', '--port', '80/tcp')).trim();
  expect(vip).toMatch(/^10\.104\.0\.\d+$/);
  const dig = (await client.exec('dig', ['@127.0.0.11', '+short', 'web'])).trim();
  expect(dig).toBe(vip);
  const b1 = await backend('web-1', 'web');
  await backend('web-2', 'web');
  await backend('web-3', 'web');
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) seen.add(await curl('http://web/'));
  expect([...seen].sort()).toEqual(['web-1', 'web-2', 'web-3']);
  // A task that leaves gets no new connections.
  await host.ok('detach', b1.name);
  const after = new Set<string>();
  for (let i = 0; i < 9; i++) after.add(await curl(`http://${vip}/`));
  expect([...after].sort()).toEqual(['web-2', 'web-3']);
  expect((await host.json<{ address: string }[]>('service', 'backends', 'web')).length).toBe(2);
});

it('honours weights (wrr)', async () => {
  await host.ok('service', 'create', 'heavy', '--network', 'vipnet', '--port', '80/tcp', '--scheduler', 'wrr');
  await backend('heavy-1', 'heavy', '--weight', '3');
  await backend('heavy-2', 'heavy', '--weight', '1');
  const count = new Map<string, number>();
  for (let i = 0; i < 40; i++) {
    const who = await curl('http://heavy/');
    count.set(who, (count.get(who) ?? 0) + 1);
  }
  expect(count.get('heavy-1')! + count.get('heavy-2')!).toBe(40);
  expect(count.get('heavy-1')!).toBeGreaterThan(count.get('heavy-2')! * 2);
});

it('keeps balancing while the daemon is down, and after a kill -9 and restart', { timeout: 150_000 }, async () => {
  await host.kill9();
  const down = new Set<string>();
  for (let i = 0; i < 6; i++) down.add(await curl('http://10.104.0.3/'));
  await host.startDaemon();
  const up = new Set<string>();
  for (let i = 0; i < 6; i++) up.add(await curl('http://web/'));
  expect([...down].sort()).toEqual(['web-2', 'web-3']);
  expect([...up].sort()).toEqual(['web-2', 'web-3']);
});

it('refuses a VIP outside the network, and an unknown scheduler, changing nothing', async () => {
  const before = await host.json('service', 'ls');
  expect((await host.cli('service', 'create', 'x', '--network', 'vipnet', '--vip', '10.9.9.9')).err).toContain(
    'IPAM_ADDRESS_OUT_OF_RANGE',
  );
  expect((await host.cli('service', 'create', 'x', '--network', 'vipnet', '--scheduler', 'random')).err).toContain(
    'API_INVALID_ARGUMENT',
  );
  expect(await host.json('service', 'ls')).toEqual(before);
});
