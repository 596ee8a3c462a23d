// kill -9 of the daemon at any moment, then a restart: nothing lost, duplicated or leaked.
import { afterEach, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns } from '../src/netns.js';

const made: { close?: () => Promise<void>; remove?: () => Promise<void> }[] = [];
afterEach(async () => {
  for (const m of made.splice(0).reverse()) await (m.close ?? m.remove)?.call(m).catch(() => {});
});

const dig = (ns: Netns, name: string) =>
  ns.exec('dig', ['@127.0.0.11', '+short', '+time=2', '+tries=1', name]).then((s) => s.trim());

async function hostLinks(host: TestHost): Promise<string[]> {
  const out = await host.ns.exec('ip', ['-o', 'link']);
  return out
    .trim()
    .split('\n')
    .map((l) => l.split(': ')[1]!.split('@')[0]!)
    .filter((n) => n !== 'lo')
    .sort();
}

it('after kill -9 and a restart, endpoints still work, names answer again, and nothing leaked', async () => {
  const host = await TestHost.start();
  made.push(host);
  await host.ok('network', 'create', 'r', '--subnet', '10.94.0.0/24');
  const sbs: Netns[] = [];
  for (let i = 0; i < 3; i++) {
    const ns = await Netns.create('cnmd-sb');
    made.push(ns);
    sbs.push(ns);
    await host.ok('attach', ns.name, '--network', 'r', '--name', `c${i}`);
  }
  const before = await hostLinks(host);
  await host.kill9();
  // While the daemon is down the links stay: containers keep their network.
  expect(await sbs[0]!.exec('ping', ['-c', '1', '-W', '2', '10.94.0.3'])).toMatch(/1 received/);
  // A sandbox dies while the daemon is down.
  await sbs[2]!.remove();
  await host.startDaemon();
  expect(await dig(sbs[0]!, 'c1')).toBe('10.94.0.3');
  expect(await dig(sbs[1]!, 'c2')).toBe('');
  const ps = await host.json<{ name: string; ip: string }[]>('ps');
  expect(ps.map((e) => `${e.name} ${e.ip}`).sort()).toEqual(['c0 10.94.0.2', 'c1 10.94.0.3']);
  // The dead sandbox's veth went with it; nothing else changed.
  expect((await hostLinks(host)).length).toBe(before.length - 1);
  // Its address went back to the pool, but allocation continues after the newest address,
  // so the just-released .4 is not reused at once (libnetwork's serial allocation).
  const d = await Netns.create('cnmd-sb');
  made.push(d);
  const out = await host.ok('attach', d.name, '--network', 'r', '--name', 'c3', '--json');
  expect(JSON.parse(out).ip).toBe('10.94.0.5');
});

it('kill -9 in the middle of attaches: after a restart every endpoint is whole or gone', async () => {
  const host = await TestHost.start();
  made.push(host);
  await host.ok('network', 'create', 'k', '--subnet', '10.95.0.0/24');
  const sbs: Netns[] = [];
  for (let i = 0; i < 8; i++) {
    const ns = await Netns.create('cnmd-sb');
    made.push(ns);
    sbs.push(ns);
  }
  // Attach all at once and kill the daemon while they run.
  const attaches = sbs.map((ns, i) => host.cli('attach', ns.name, '--network', 'k', '--name', `k${i}`));
  await new Promise((r) => setTimeout(r, 40 + Math.random() * 200));
  await host.kill9();
  await Promise.all(attaches);
  await host.startDaemon();

  const ps = await host.json<{ name: string; ip: string; sandbox: string }[]>('ps');
  const ips = ps.map((e) => e.ip);
  expect(new Set(ips).size).toBe(ips.length);
  const links = await hostLinks(host);
  const veths = links.filter((l) => l.startsWith('vcn'));
  // One veth per endpoint that survived, none for the ones undone.
  expect(veths.length).toBe(ps.length);
  for (const [i, ns] of sbs.entries()) {
    const attached = ps.some((e) => e.name === `k${i}`);
    const eth = await ns.exec('ip', ['-o', 'link']);
    expect(eth.includes('eth0'), `k${i}`).toBe(attached);
    if (attached) expect(await dig(ns, `k${i}`)).toMatch(/^10\.95\.0\.\d+$/);
  }
  // Those undone can be attached now, and get addresses no one holds.
  for (const [i, ns] of sbs.entries()) {
    if (ps.some((e) => e.name === `k${i}`)) continue;
    await host.ok('attach', ns.name, '--network', 'k', '--name', `k${i}`);
  }
  const all = await host.json<{ ip: string }[]>('ps');
  expect(all.length).toBe(8);
  expect(new Set(all.map((e) => e.ip)).size).toBe(8);
});

it('an endpoint that cannot be rebuilt is marked failed; the daemon starts and the others answer', async () => {
  const host = await TestHost.start();
  made.push(host);
  await host.ok('network', 'create', 'f', '--subnet', '10.96.0.0/24');
  const [good, bad] = [await Netns.create('cnmd-sb'), await Netns.create('cnmd-sb')];
  made.push(good, bad);
  await host.ok('attach', good.name, '--network', 'f', '--name', 'good');
  await host.ok('attach', bad.name, '--network', 'f', '--name', 'bad');
  await host.kill9();
  // While the daemon is away, someone takes the interface name the rebuild needs.
  await bad.exec('ip', ['link', 'del', 'eth0']);
  await bad.exec('ip', ['link', 'add', 'eth0', 'type', 'bridge']);
  await host.startDaemon();
  expect(host.log).toMatch(/reconcile: endpoint bad on f .*SIDECAR_LINK_EXISTS/);
  expect(host.log).toMatch(/1 failed/);
  expect(await dig(good, 'good')).toBe('10.96.0.2');
  const ps = await host.json<{ name: string; status: string; error?: { code: string } }[]>('ps');
  expect(ps.map((e) => [e.name, e.status, e.error?.code])).toEqual([
    ['good', 'ready', undefined],
    ['bad', 'failed', 'SIDECAR_LINK_EXISTS'],
  ]);
  expect((await host.ok('ps')).split('\n')[2]).toMatch(/bad .*failed \(SIDECAR_LINK_EXISTS\)$/);
  // A detach clears it; the sandbox can then be attached again.
  await bad.exec('ip', ['link', 'del', 'eth0']);
  await host.ok('detach', bad.name);
  await host.ok('attach', bad.name, '--network', 'f', '--name', 'bad');
  expect(await dig(good, 'bad')).toMatch(/^10\.96\.0\.\d+$/);
});
