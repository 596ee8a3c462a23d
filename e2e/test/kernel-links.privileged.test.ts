// The kernel layer against the real kernel, for both backends: what `ip`, `bridge` and
// `ping` show afterwards. A test namespace stands in for the host (the bridge's side), so
// nothing is made in this machine's own namespace; deleting the namespaces takes every link.
import { IprouteKernel, type Kernel, NetlinkKernel, type NetnsLinks } from '@cnmd/sidecar';
import { describe, expect } from 'vitest';
import { test as base } from '../src/fixtures.js';
import { Netns } from '../src/netns.js';

const kernels: Kernel[] = [new NetlinkKernel(), new IprouteKernel()];

/** A host namespace (the fixture's) with its links open, and a sandbox namespace. */
const test = base.extend<{ sandbox: Netns; host: NetnsLinks }>({
  // biome-ignore lint/correctness/noEmptyPattern: vitest fixtures take their dependencies by destructuring
  sandbox: async ({}, use) => {
    const ns = await Netns.create('cnmd-sb');
    try {
      await use(ns);
    } finally {
      await ns.remove();
    }
  },
  host: [undefined as unknown as NetnsLinks, { auto: false }],
});

const names = (out: string) =>
  out
    .trim()
    .split('\n')
    .map((l) => l.split(': ')[1]!.split('@')[0]);

/** A bridge br0 (10.9.0.1/24) in `host`, and an endpoint eth0 in `sandbox` joined to it. */
async function endpoint(k: Kernel, host: Netns, sandbox: Netns, n: number, mac: string) {
  await using h = await k.open(host.path);
  await using s = await k.open(sandbox.path);
  await h.addVeth({
    name: `veth${n}`,
    master: 'br0',
    up: true,
    mtu: 1450,
    peer: { name: 'eth0', netns: sandbox.path, mac, mtu: 1450 },
  });
  await s.setArpNotify('eth0', true);
  await s.setLink('eth0', { up: true });
  await s.addAddress('eth0', `10.9.0.${n}/24`);
  await s.addRoute({ dst: 'default', gateway: '10.9.0.1' });
}

describe.each(kernels)('$name', (k) => {
  test('a bridge and an endpoint: the address, MAC, MTU, route and arp_notify `ip` shows', async ({
    netns,
    sandbox,
  }) => {
    await using h = await k.open(netns.path);
    await h.addBridge('br0', { up: true, mtu: 1450 });
    await h.addAddress('br0', '10.9.0.1/24');
    await endpoint(k, netns, sandbox, 2, '02:42:0a:09:00:02');

    const addr = await sandbox.exec('ip', ['-o', 'addr', 'show', 'dev', 'eth0']);
    expect(addr).toMatch(/inet 10\.9\.0\.2\/24 brd 10\.9\.0\.255 /);
    const link = await sandbox.exec('ip', ['-o', 'link', 'show', 'dev', 'eth0']);
    expect(link).toMatch(/link\/ether 02:42:0a:09:00:02 /);
    expect(link).toMatch(/mtu 1450 .*state UP/);
    expect(await sandbox.exec('ip', ['route', 'show', 'default'])).toMatch(/^default via 10\.9\.0\.1 dev eth0/);
    expect(await sandbox.exec('cat', ['/proc/sys/net/ipv4/conf/eth0/arp_notify'])).toBe('1\n');
    expect(await netns.exec('ip', ['-o', 'link', 'show', 'master', 'br0'])).toMatch(
      /veth2@if\d+:.*mtu 1450 .*master br0 state UP/,
    );

    // And the same through the layer's own listing.
    await using s = await k.open(sandbox.path);
    const eth0 = await s.link('eth0');
    expect(eth0).toMatchObject({ name: 'eth0', kind: 'veth', mac: '02:42:0a:09:00:02', mtu: 1450, up: true });
    expect(await s.addresses('eth0')).toContainEqual({ link: eth0.index, cidr: '10.9.0.2/24' });
    expect(await s.routes(4)).toContainEqual({ dst: 'default', gateway: '10.9.0.1', link: eth0.index });
    const br0 = await h.link('br0');
    expect(br0.kind).toBe('bridge');
    expect((await h.link('veth2')).master).toBe(br0.index);
  });

  test('two sandboxes on one bridge ping each other', async ({ netns, sandbox }) => {
    await using other = await Netns.create('cnmd-sb');
    await using h = await k.open(netns.path);
    await h.addBridge('br0', { up: true });
    await endpoint(k, netns, sandbox, 2, '02:42:0a:09:00:02');
    await endpoint(k, netns, other, 3, '02:42:0a:09:00:03');
    expect(await sandbox.exec('ping', ['-c', '1', '-W', '2', '10.9.0.3'])).toMatch(/1 received/);
    expect(await other.exec('ip', ['neigh', 'show', '10.9.0.2'])).toMatch(/lladdr 02:42:0a:09:00:02/);
  });

  test('IPv6: an address with no duplicate address detection, and a default route', async ({ netns, sandbox }) => {
    await using h = await k.open(netns.path);
    await using s = await k.open(sandbox.path);
    await h.addVeth({ name: 'veth6', up: true, peer: { name: 'eth0', netns: sandbox.path } });
    await s.setLink('eth0', { up: true });
    await h.addAddress('veth6', 'fd00:9::1/64');
    await s.addAddress('eth0', 'fd00:9::2/64');
    await s.addRoute({ dst: 'default', gateway: 'fd00:9::1' });
    const addr = await sandbox.exec('ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
    expect(addr).toMatch(/inet6 fd00:9::2\/64 /);
    expect(addr).not.toMatch(/tentative/);
    expect(await sandbox.exec('ip', ['-6', 'route', 'show', 'default'])).toMatch(/^default via fd00:9::1 dev eth0/);
    expect(await s.addresses('eth0')).toContainEqual({ link: (await s.link('eth0')).index, cidr: 'fd00:9::2/64' });
    expect(await sandbox.exec('ping', ['-6', '-c', '1', '-W', '2', 'fd00:9::1'])).toMatch(/1 received/);
  });

  test('hairpin on a bridge port, MTU, MAC, rename, leave the bridge, down', async ({ netns, sandbox }) => {
    await using h = await k.open(netns.path);
    await h.addBridge('br0');
    await h.addVeth({ name: 'vethA', master: 'br0', peer: { name: 'eth0', netns: sandbox.path } });
    await h.setHairpin('vethA', true);
    expect(await netns.exec('bridge', ['-d', 'link', 'show', 'dev', 'vethA'])).toMatch(/hairpin on/);
    await h.setHairpin('vethA', false);
    expect(await netns.exec('bridge', ['-d', 'link', 'show', 'dev', 'vethA'])).toMatch(/hairpin off/);
    await h.setLink('vethA', { mtu: 1400, mac: '02:00:00:00:00:0a', name: 'vethB', master: null, up: true });
    const link = await netns.exec('ip', ['-o', 'link', 'show', 'dev', 'vethB']);
    expect(link).toMatch(/mtu 1400 /);
    expect(link).toMatch(/link\/ether 02:00:00:00:00:0a /);
    expect(link).not.toMatch(/master/);
    await h.setLink('vethB', { up: false });
    expect((await h.link('vethB')).up).toBe(false);
  });

  test('a link moved into a sandbox and renamed in one step', async ({ netns, sandbox }) => {
    await using h = await k.open(netns.path);
    await h.addVeth({ name: 'vethX', peer: { name: 'tmp0' } });
    await h.setLink('tmp0', { netns: sandbox.path, name: 'eth1' });
    expect(names(await sandbox.exec('ip', ['-o', 'link', 'show']))).toEqual(['lo', 'eth1']);
    expect(names(await netns.exec('ip', ['-o', 'link', 'show']))).toEqual(['lo', 'vethX']);
  });

  test('a macvlan (bridge mode) of a parent, made directly in the sandbox', async ({ netns, sandbox }) => {
    // The parent: one end of a veth pair, since the test kernel has no dummy driver.
    await netns.exec('ip', ['link', 'add', 'parent0', 'up', 'type', 'veth', 'peer', 'name', 'parent1']);
    await using h = await k.open(netns.path);
    await h.addMacvlan({ name: 'mv0', parent: 'parent0', netns: sandbox.path, mac: '02:00:00:00:01:01', up: true });
    const out = await sandbox.exec('ip', ['-d', '-o', 'link', 'show', 'dev', 'mv0']);
    expect(out).toMatch(/macvlan mode bridge/);
    expect(out).toMatch(/link\/ether 02:00:00:00:01:01 /);
    await using s = await k.open(sandbox.path);
    expect((await s.link('mv0')).kind).toBe('macvlan');
  });

  test('a VXLAN device: VNI, port 4789, local and remote, no learning, MTU 50 below its parent', async ({ netns }) => {
    await netns.exec('ip', ['link', 'add', 'under0', 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'under1']);
    await netns.exec('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'under0']);
    await using h = await k.open(netns.path);
    await h.addVxlan({ name: 'vx0', vni: 4096, local: '192.0.2.1', remote: '192.0.2.2', parent: 'under0' });
    const out = await netns.exec('ip', ['-d', '-o', 'link', 'show', 'dev', 'vx0']);
    expect(out).toMatch(/mtu 1450 /);
    expect(out).toMatch(/vxlan id 4096 remote 192\.0\.2\.2 local 192\.0\.2\.1 dev under0 .*dstport 4789 nolearning/);
    await h.addBridge('br0');
    await h.setLink('vx0', { master: 'br0' });
    expect((await h.link('vx0')).master).toBe((await h.link('br0')).index);
  });

  test('a VXLAN device with static peers: FDB and neighbour entries as bridge and ip show them', async ({ netns }) => {
    await netns.exec('ip', ['link', 'add', 'under0', 'type', 'veth', 'peer', 'name', 'under1']);
    await netns.exec('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'under0']);
    await using h = await k.open(netns.path);
    await h.addVxlan({ name: 'vx0', vni: 4097, local: '192.0.2.1', parent: 'under0', proxy: true, up: true });
    expect(await netns.exec('ip', ['-d', '-o', 'link', 'show', 'dev', 'vx0'])).toMatch(/nolearning proxy/);
    await h.addFdb('vx0', { mac: '02:42:0a:00:00:05', dst: '192.0.2.7' });
    await h.addFdb('vx0', { mac: '02:42:0a:00:00:05', dst: '192.0.2.7' }); // again: replaced, not an error
    await h.addNeighbour('vx0', { ip: '10.0.0.5', mac: '02:42:0a:00:00:05' });
    expect(await netns.exec('bridge', ['fdb', 'show', 'dev', 'vx0'])).toMatch(
      /02:42:0a:00:00:05 dst 192\.0\.2\.7 self permanent/,
    );
    expect(await netns.exec('ip', ['neigh', 'show', 'dev', 'vx0'])).toMatch(
      /10\.0\.0\.5 lladdr 02:42:0a:00:00:05 PERMANENT/,
    );
    expect(await h.fdb('vx0')).toEqual([{ mac: '02:42:0a:00:00:05', dst: '192.0.2.7' }]);
    expect(await h.neighbours('vx0')).toEqual([{ ip: '10.0.0.5', mac: '02:42:0a:00:00:05' }]);
    await h.deleteFdb('vx0', { mac: '02:42:0a:00:00:05', dst: '192.0.2.7' });
    await h.deleteNeighbour('vx0', '10.0.0.5');
    await h.deleteNeighbour('vx0', '10.0.0.5'); // gone already: fine
    expect(await h.fdb('vx0')).toEqual([]);
    expect(await h.neighbours('vx0')).toEqual([]);
  });

  test('errors carry stable codes, and a failed call changes nothing', async ({ netns, sandbox }) => {
    await using h = await k.open(netns.path);
    await h.addBridge('br0');
    await expect(h.addBridge('br0')).rejects.toMatchObject({
      code: 'SIDECAR_LINK_EXISTS',
      ...(k.name === 'netlink' ? { errno: 17 } : {}), // EEXIST, straight from the kernel
    });
    await expect(h.deleteLink('nope0')).rejects.toMatchObject({ code: 'SIDECAR_LINK_NOT_FOUND' });
    await expect(h.link('nope0')).rejects.toMatchObject({ code: 'SIDECAR_LINK_NOT_FOUND' });
    await expect(h.addBridge('a/b')).rejects.toMatchObject({ code: 'SIDECAR_INVALID_ARGUMENT' });
    await expect(h.addBridge('sixteen-chars-xx')).rejects.toMatchObject({ code: 'SIDECAR_INVALID_ARGUMENT' });
    await expect(h.addAddress('br0', '10.0.0.300/24')).rejects.toMatchObject({ code: 'SIDECAR_INVALID_ARGUMENT' });
    await expect(h.setLink('br0', { mac: '02:00:00:00:00' })).rejects.toMatchObject({
      code: 'SIDECAR_INVALID_ARGUMENT',
    });
    await h.addAddress('br0', '10.9.0.1/24');
    await expect(h.addAddress('br0', '10.9.0.1/24')).rejects.toMatchObject({ code: 'SIDECAR_ADDRESS_EXISTS' });
    await h.setLink('br0', { up: true });
    await h.addRoute({ dst: '10.8.0.0/16', gateway: '10.9.0.254' });
    await expect(h.addRoute({ dst: '10.8.0.0/16', gateway: '10.9.0.254' })).rejects.toMatchObject({
      code: 'SIDECAR_ROUTE_EXISTS',
    });
    await expect(h.addVeth({ name: 'vethE', peer: { name: 'eth0', netns: '/etc/hostname' } })).rejects.toMatchObject({
      code: 'SIDECAR_NETNS_INVALID',
    });
    await expect(k.open('/etc/hostname')).rejects.toMatchObject({ code: 'SIDECAR_NETNS_INVALID' });
    await h.addVeth({ name: 'vethE', peer: { name: 'eth0', netns: sandbox.path } });
    await expect(h.addVeth({ name: 'vethF', peer: { name: 'eth0', netns: sandbox.path } })).rejects.toMatchObject({
      code: 'SIDECAR_LINK_EXISTS',
    });
    expect(names(await netns.exec('ip', ['-o', 'link', 'show']))).toEqual(['lo', 'br0', 'vethE']);
  });

  test('after delete, nothing is left in either namespace', async ({ netns, sandbox }) => {
    await using h = await k.open(netns.path);
    await h.addBridge('br0', { up: true });
    await endpoint(k, netns, sandbox, 2, '02:42:0a:09:00:02');
    await using s = await k.open(sandbox.path);
    await s.deleteLink('eth0'); // deleting one end of a veth deletes its peer too
    await h.deleteLink('br0');
    expect(names(await netns.exec('ip', ['-o', 'link', 'show']))).toEqual(['lo']);
    expect(names(await sandbox.exec('ip', ['-o', 'link', 'show']))).toEqual(['lo']);
    expect((await h.links()).map((l) => l.name)).toEqual(['lo']);
    expect(await sandbox.exec('ip', ['route', 'show'])).toBe('');
  });
});
