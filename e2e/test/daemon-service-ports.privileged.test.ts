// Service traffic through the daemon beyond plain IPv4 TCP: a service's published host port
// (Docker's ingress on one host) from another host, from the host's localhost and from a
// container; an IPv6 VIP on a dual-stack network; UDP through the VIP, whose flows to a
// detached task are gone at once.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestHost } from '../src/daemon-harness.js';
import { type Netns, run } from '../src/netns.js';
import { NsServer, udpOnce } from '../src/servers.js';
import { ServiceLab } from '../src/service-lab.js';

let lab: ServiceLab;
let host: TestHost;
let client: Netns;
let lbns: string;

beforeAll(async () => {
  lab = await ServiceLab.start('pnet', '--subnet', '10.107.0.0/24', '--subnet', 'fd00:107::/64');
  ({ host, client, lbns } = lab);
});
afterAll(() => lab?.close());

const curlIn = (ns: Netns, url: string, ...extra: string[]) => lab.curlIn(ns, url, ...extra);

async function spread(ns: Netns, url: string, ...extra: string[]): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < 10; i++) seen.add(await curlIn(ns, url, ...extra));
  return [...seen].sort();
}

async function task(
  name: string,
  service: string,
  serve: (ns: Netns) => Promise<NsServer>,
): Promise<{ ns: Netns; ip: string; ip6: string }> {
  const ns = await lab.sandbox();
  lab.track(await serve(ns));
  const [, ip, ip6] = (await host.ok('attach', ns.name, '--network', 'pnet', '--name', name, '--service', service))
    .trim()
    .split(' ');
  return { ns, ip: ip!, ip6: ip6! };
}

it('publishes a service port: from another host, from localhost, from a container; rm removes it', async () => {
  const inet = await host.uplink();
  await host.ok('service', 'create', 'web', '--network', 'pnet', '--port', '80/tcp', '--publish', '8080:80/tcp');
  const w1 = await task('web-1', 'web', (ns) => NsServer.http(ns, 80, 'web-1'));
  const w2 = await task('web-2', 'web', (ns) => NsServer.http(ns, 80, 'web-2'));
  expect(await spread(inet, 'http://203.0.113.1:8080/')).toEqual(['web-1', 'web-2']);
  // The same port on the host's IPv6 address leads to the IPv6 VIP.
  await host.ns.exec('ip', ['addr', 'add', '2001:db8:107::1/64', 'dev', 'uplink0', 'nodad']);
  await inet.exec('ip', ['addr', 'add', '2001:db8:107::2/64', 'dev', 'wan0', 'nodad']);
  expect(await spread(inet, 'http://[2001:db8:107::1]:8080/')).toEqual(['web-1', 'web-2']);
  expect(await spread(host.ns, 'http://127.0.0.1:8080/')).toEqual(['web-1', 'web-2']);
  // Hairpin: a container on the network to the host's published port.
  expect(await spread(client, 'http://10.107.0.1:8080/')).toEqual(['web-1', 'web-2']);
  expect((await host.json<{ publish: unknown[] }>('service', 'inspect', 'web')).publish).toEqual([
    { hostPort: 8080, port: 80, proto: 'tcp' },
  ]);
  // A restart (after kill -9) keeps the published port, and its VIP, the service's.
  await host.kill9();
  await host.startDaemon();
  expect(await spread(inet, 'http://203.0.113.1:8080/')).toEqual(['web-1', 'web-2']);
  expect((await host.cli('service', 'create', 'again', '--network', 'pnet', '--publish', '8080:80')).err).toContain(
    'SIDECAR_PORT_IN_USE',
  );
  // Its VIPs stay the service's: a container asking for one is refused.
  const { vip, vip6 } = await host.json<{ vip: string; vip6: string }>('service', 'inspect', 'web');
  const other = await lab.sandbox();
  expect((await host.cli('attach', other.name, '--network', 'pnet', '--ip', vip)).err).toContain('IPAM_ADDRESS_IN_USE');
  expect((await host.cli('attach', other.name, '--network', 'pnet', '--ip6', vip6)).err).toContain(
    'IPAM_ADDRESS_IN_USE',
  );

  await host.ok('detach', w1.ns.name);
  await host.ok('detach', w2.ns.name);
  await host.ok('service', 'rm', 'web');
  expect(await curlIn(inet, 'http://203.0.113.1:8080/', '--max-time', '1')).toBe('');
  expect(await host.ns.exec('nft', ['list', 'ruleset'])).not.toMatch(/\b8080\b/);
});

it('an IPv6 VIP on a dual-stack network: AAAA, and curl -6 balanced over the tasks', async () => {
  const vips = (await host.ok('service', 'create', 'web6', '--network', 'pnet', '--port', '80/tcp')).trim().split(' ');
  expect(vips[0]).toMatch(/^10\.107\.0\.\d+$/);
  expect(vips[1]).toMatch(/^fd00:107::[0-9a-f]+$/);
  expect((await client.exec('dig', ['@127.0.0.11', '+short', 'AAAA', 'web6'])).trim()).toBe(vips[1]);
  expect((await client.exec('dig', ['@127.0.0.11', '+short', 'A', 'web6'])).trim()).toBe(vips[0]);
  await task('v6-1', 'web6', (ns) => NsServer.http(ns, 80, 'v6-1'));
  await task('v6-2', 'web6', (ns) => NsServer.http(ns, 80, 'v6-2'));
  expect(await spread(client, `http://[${vips[1]}]/`, '-6')).toEqual(['v6-1', 'v6-2']);
  expect(await spread(client, 'http://web6/', '-6')).toEqual(['v6-1', 'v6-2']);
  expect(await spread(client, 'http://web6/', '-4')).toEqual(['v6-1', 'v6-2']);
  // Both VIPs given.
  const given = (
    await host.ok('service', 'create', 'pinned', '--network', 'pnet', '--vip', '10.107.0.200', '--vip', 'fd00:107::200')
  ).trim();
  expect(given).toBe('10.107.0.200 fd00:107::200');
  expect((await host.json<{ vip6: string }>('service', 'inspect', 'pinned')).vip6).toBe('fd00:107::200');
});

it("UDP through the VIP; a detached task's flows are gone, so the client moves on at once", async () => {
  const vip = (await host.ok('service', 'create', 'dns', '--network', 'pnet', '--port', '53/udp'))
    .trim()
    .split(' ')[0]!;
  const t1 = await task('dns-1', 'dns', (ns) => NsServer.udpEcho(ns, 53, 'dns-1'));
  const t2 = await task('dns-2', 'dns', (ns) => NsServer.udpEcho(ns, 53, 'dns-2'));
  const send = async (from: number) => (await udpOnce(client, vip, 53, from)).split(':')[0]!;
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add(await send(41000 + i));
  expect([...seen].sort()).toEqual(['dns-1', 'dns-2']);
  // One flow (one source port) sticks to its task...
  const first = await send(41100);
  expect(await send(41100)).toBe(first);
  const gone = first === 'dns-1' ? t1 : t2;
  const flows = () =>
    run('ip', ['netns', 'exec', lbns, 'conntrack', '-L', '-p', 'udp', '--orig-dst', vip])
      .catch(() => '')
      .then((s) => s.split('\n').filter((l) => l.includes(`src=${gone.ip} `)));
  expect((await flows()).length).toBeGreaterThan(0);
  // ...until that task is detached: its flows go with it, and the same flow moves on.
  await host.ok('detach', gone.ns.name);
  expect(await flows()).toEqual([]);
  expect(await send(41100)).toBe(first === 'dns-1' ? 'dns-2' : 'dns-1');
});
