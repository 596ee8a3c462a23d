// macvlan networks: endpoints are macvlan (bridge mode) sub-interfaces of a parent link of the
// host, here a veth whose other end is a "LAN" namespace holding the network's router.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns } from '../src/netns.js';

let host: TestHost;
let lan: Netns;
const sbs: Netns[] = [];

beforeAll(async () => {
  host = await TestHost.start();
  lan = await Netns.create('cnmd-lan');
  await host.ns.exec('ip', ['link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'router0', 'netns', lan.name]);
  await host.ns.exec('ip', ['link', 'set', 'lan0', 'up']);
  await lan.exec('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'router0']);
  await lan.exec('ip', ['link', 'set', 'router0', 'up']);
});

afterAll(async () => {
  for (const ns of sbs) await ns.remove().catch(() => {});
  await host?.close();
  await lan?.remove().catch(() => {});
});

it('attaches sandboxes as macvlan sub-interfaces that reach each other and the LAN', async () => {
  await host.ok(
    'network',
    'create',
    'lan',
    '--driver',
    'macvlan',
    '--opt',
    'parent=lan0',
    '--subnet',
    '192.0.2.0/24',
    '--gateway',
    '192.0.2.1',
  );
  for (const name of ['m1', 'm2']) {
    const ns = await Netns.create('cnmd-sb');
    sbs.push(ns);
    await host.ok('attach', ns.name, '--network', 'lan', '--name', name);
  }
  const [m1, m2] = sbs as [Netns, Netns];
  expect(await m1.exec('ip', ['-d', '-o', 'link', 'show', 'eth0'])).toMatch(/macvlan mode bridge/);
  expect(await m1.exec('ip', ['route', 'show', 'default'])).toContain('via 192.0.2.1');
  expect(await m1.exec('ping', ['-c', '1', '-W', '2', '192.0.2.3'])).toMatch(/1 received/);
  expect(await m2.exec('ping', ['-c', '1', '-W', '2', '192.0.2.1'])).toMatch(/1 received/);
  expect((await m2.exec('dig', ['@127.0.0.11', '+short', 'm1'])).trim()).toBe('192.0.2.2');
  // The network made no bridge, and detaching removes the sub-interface.
  expect(await host.ns.exec('ip', ['-o', 'link'])).not.toMatch(/cnmd-[0-9a-f]{10}/);
  await host.ok('detach', m1.name);
  expect(await m1.exec('ip', ['-o', 'link'])).not.toContain('eth0');
});

it('refuses a macvlan network whose parent does not exist', async () => {
  const r = await host.cli('network', 'create', 'nolan', '--driver', 'macvlan', '--opt', 'parent=nothere0');
  expect(r.err).toContain('SIDECAR_LINK_NOT_FOUND');
  expect((await host.json<{ name: string }[]>('network', 'ls')).map((n) => n.name)).toEqual(['lan']);
});

it('refuses an MTU the parent cannot carry, naming both (the kernel would say only EINVAL)', async () => {
  const r = await host.cli('network', 'create', 'big', '--driver', 'macvlan', '--opt', 'parent=lan0', '--mtu', '9000');
  expect(r.err).toContain('SIDECAR_INVALID_ARGUMENT: mtu 9000 is more than the parent lan0 carries (1500)');
  expect((await host.json<{ name: string }[]>('network', 'ls')).map((n) => n.name)).toEqual(['lan']);
});
