// The daemon on one simulated host: networks, endpoints, DNS inside sandboxes, checked with
// the CLI and real clients (dig, getent, ping) from inside the sandboxes.
import { existsSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns } from '../src/netns.js';
import { NsServer } from '../src/servers.js';

let host: TestHost;
const sandboxes: Netns[] = [];

async function sandbox(): Promise<Netns> {
  const ns = await Netns.create('cnmd-sb');
  sandboxes.push(ns);
  return ns;
}

beforeAll(async () => {
  host = await TestHost.start();
});

afterAll(async () => {
  await host?.close();
  for (const ns of sandboxes) await ns.remove().catch(() => {});
});

const dig = (ns: Netns, ...args: string[]) =>
  ns.exec('dig', ['@127.0.0.11', '+short', '+time=2', '+tries=1', ...args]).then((s) => s.trim());

describe('networks', () => {
  it('creates, lists, inspects and removes a bridge network', async () => {
    const id = (await host.ok('network', 'create', 'n1', '--subnet', '10.91.0.0/24')).trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const ls = await host.ok('network', 'ls');
    expect(ls).toMatch(/NAME\s+DRIVER\s+SCOPE\s+SUBNET/);
    expect(ls).toMatch(/n1\s+bridge\s+local\s+10\.91\.0\.0\/24\s+0/);
    const net = await host.json<{ gateway: string; device: string }>('network', 'inspect', 'n1');
    expect(net.gateway).toBe('10.91.0.1');
    // The bridge exists in the host namespace with the gateway address, and is up.
    const addr = await host.ns.exec('ip', ['-o', 'addr', 'show', 'dev', net.device]);
    expect(addr).toContain('10.91.0.1/24');
    await host.ok('network', 'rm', 'n1');
    expect(await host.ns.exec('ip', ['-o', 'link'])).not.toContain(net.device);
    expect(await host.json('network', 'ls')).toEqual([]);
  });

  it.each([
    [['network', 'create', 'bad', '--subnet', '10.1.2.3/16'], 'IPAM_INVALID_CIDR'],
    [['network', 'create', '-x'], 'API_INVALID_ARGUMENT'],
    [['network', 'inspect', 'nope'], 'SIDECAR_NETWORK_NOT_FOUND'],
    [['network', 'rm', 'nope'], 'SIDECAR_NETWORK_NOT_FOUND'],
    [['attach', '/proc/self/ns/mnt', '--network', 'nope'], 'SIDECAR_NETWORK_NOT_FOUND'],
    [
      ['network', 'create', 'o', '--driver', 'ipvlan'],
      'SIDECAR_DRIVER_UNKNOWN: no network driver "ipvlan": bridge, macvlan, overlay',
    ],
    [['network', 'create', 'o', '--driver', 'overlay'], 'SIDECAR_CLUSTER_UNAVAILABLE'],
    [['network', 'create', 'n', '--driver', 'null'], 'SIDECAR_INVALID_ARGUMENT'],
    [['network', 'create', 'm', '--driver', 'macvlan'], 'API_INVALID_ARGUMENT'],
  ])('cnmd %j fails with %s and changes nothing', async (args, code) => {
    const r = await host.cli(...args);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(code);
    expect(await host.json('network', 'ls')).toEqual([]);
  });

  it('serves its API on a socket only root can use', async () => {
    expect(statSync(host.socket).mode & 0o777).toBe(0o600);
  });

  it('gives endpoints the MTU of their network', async () => {
    await host.ok('network', 'create', 'jumbo', '--subnet', '10.90.0.0/24', '--mtu', '1400');
    const ns = await sandbox();
    await host.ok('attach', ns.name, '--network', 'jumbo');
    expect(await ns.exec('ip', ['-o', 'link', 'show', 'eth0'])).toContain('mtu 1400');
    await host.ok('detach', ns.name);
    await host.ok('network', 'rm', 'jumbo');
  });

  it('refuses an overlapping subnet and a duplicate name', async () => {
    await host.ok('network', 'create', 'o1', '--subnet', '10.92.0.0/16');
    expect((await host.cli('network', 'create', 'o2', '--subnet', '10.92.1.0/24')).err).toContain('IPAM_POOL_OVERLAP');
    expect((await host.cli('network', 'create', 'o1')).err).toContain('SIDECAR_NETWORK_EXISTS');
    await host.ok('network', 'rm', 'o1');
  });
});

describe('endpoints and DNS', () => {
  let a: Netns;
  let b: Netns;
  beforeAll(async () => {
    await host.ok('network', 'create', 'web', '--subnet', '10.93.0.0/24', '--subnet', 'fd93::/64');
    a = await sandbox();
    b = await sandbox();
    await host.ok('attach', a.name, '--network', 'web', '--name', 'alpha', '--alias', 'api');
    await host.ok('attach', b.path, '--network', 'web', '--name', 'beta');
  });

  it('gives each sandbox eth0 with its address, MAC and a default route', async () => {
    const [ep] = await host.json<{ ip: string; ip6: string; mac: string; ifname: string }[]>('inspect', 'alpha');
    expect(ep).toMatchObject({ ifname: 'eth0', ip: '10.93.0.2', ip6: 'fd93::2' });
    const link = await a.exec('ip', ['-o', 'addr', 'show', 'dev', 'eth0']);
    expect(link).toContain('10.93.0.2/24');
    expect(link).toContain('fd93::2/64');
    expect(await a.exec('ip', ['-o', 'link', 'show', 'eth0'])).toContain(ep!.mac);
    expect(await a.exec('ip', ['route', 'show', 'default'])).toContain('via 10.93.0.1 dev eth0');
    expect((await a.exec('cat', ['/proc/sys/net/ipv4/conf/eth0/arp_notify'])).trim()).toBe('1');
  });

  it('a second network gives no default route unless asked; asked, it takes it; detached, it hands it back', async () => {
    await host.ok('network', 'create', 'second', '--subnet', '10.89.0.0/24');
    await host.ok('network', 'create', 'third', '--subnet', '10.88.0.0/24');
    await host.ok('attach', a.name, '--network', 'second');
    expect(await a.exec('ip', ['route', 'show', 'default'])).toContain('via 10.93.0.1');
    await host.ok('attach', a.name, '--network', 'third', '--default-route');
    expect(await a.exec('ip', ['route', 'show', 'default'])).toContain('via 10.88.0.1');
    await host.ok('detach', a.name, '--network', 'third');
    expect(await a.exec('ip', ['route', 'show', 'default'])).toMatch(/via 10\.(93|89)\.0\.1/);
    await host.ok('detach', a.name, '--network', 'second');
    await host.ok('network', 'rm', 'second');
    await host.ok('network', 'rm', 'third');
  });

  it('sandboxes on one network reach each other', async () => {
    expect(await a.exec('ping', ['-c', '1', '-W', '2', '10.93.0.3'])).toMatch(/1 received/);
  });

  it('answers names, aliases, AAAA and PTR at 127.0.0.11 inside each sandbox', async () => {
    expect(await dig(b, 'alpha')).toBe('10.93.0.2');
    expect(await dig(b, 'API')).toBe('10.93.0.2');
    expect(await dig(b, 'alpha', 'AAAA')).toBe('fd93::2');
    expect(await dig(a, 'beta')).toBe('10.93.0.3');
    expect(await dig(a, '-x', '10.93.0.3')).toMatch(/^beta/);
    expect(await dig(a, '+tcp', 'beta')).toBe('10.93.0.3');
  });

  it('leaves port 53 to the container: its own DNS server binds 0.0.0.0:53 beside the resolver', async () => {
    await using server = await NsServer.udpEcho(a, 53, 'own dns');
    const own = await a.exec('bash', ['-c', 'echo hi | timeout 3 nc -u -w 1 10.93.0.2 53 || true']);
    expect(own).toContain('own dns: hi');
    expect(await dig(a, 'beta')).toBe('10.93.0.3');
    await server.stop();
  });

  it('writes /etc/netns/NAME/resolv.conf so that getent works', async () => {
    // getent hosts asks for IPv6 first, as glibc does; ahostsv4 for the IPv4 answer.
    expect(await b.exec('getent', ['hosts', 'alpha'])).toMatch(/^fd93::2\s+alpha/);
    expect(await b.exec('getent', ['ahostsv4', 'api'])).toMatch(/^10\.93\.0\.2\s/);
  });

  it('refuses to attach a sandbox twice to one network', async () => {
    const r = await host.cli('attach', a.name, '--network', 'web');
    expect(r.err).toContain('SIDECAR_ENDPOINT_EXISTS');
    expect((await a.exec('ip', ['-o', 'link'])).match(/eth\d/g)).toEqual(['eth0']);
  });

  it('detach removes the link, the name and the address; the address is handed out again later', async () => {
    const c = await sandbox();
    await host.ok('attach', c.name, '--network', 'web', '--name', 'gamma');
    expect(await dig(a, 'gamma')).toBe('10.93.0.4');
    await host.ok('detach', c.name);
    expect(await c.exec('ip', ['-o', 'link'])).not.toContain('eth0');
    expect(await dig(a, 'gamma')).toBe('');
    expect((await host.json<unknown[]>('ps')).length).toBe(2);
    expect(existsSync(`/etc/netns/${c.name}`)).toBe(false);
  });
});
