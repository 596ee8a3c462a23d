// What the firewall gives users of the daemon: outbound NAT, isolation between networks,
// internal networks, icc=false, and published ports from everywhere a user would try them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns } from '../src/netns.js';
import { NsServer } from '../src/servers.js';

let host: TestHost;
let inet: Netns;
const made: { remove?: () => Promise<void>; stop?: () => Promise<void> }[] = [];

beforeAll(async () => {
  host = await TestHost.start();
  inet = await host.uplink();
});
afterAll(async () => {
  for (const m of made.reverse()) await (m.stop ?? m.remove)?.call(m).catch(() => {});
  await host?.close();
});

async function attached(network: string, name: string, ...extra: string[]): Promise<Netns> {
  const ns = await Netns.create('cnmd-sb');
  made.push(ns);
  await host.ok('attach', ns.name, '--network', network, '--name', name, ...extra);
  return ns;
}

const reaches = (ns: Netns, ip: string) =>
  ns.exec('ping', ['-c', '1', '-W', '1', ip]).then(
    () => true,
    () => false,
  );
const curl = (ns: Netns, url: string) =>
  ns.exec('curl', ['-s', '--max-time', '3', url]).then(
    (s) => s,
    () => '',
  );
const dig = (ns: Netns, name: string) =>
  ns.exec('dig', ['@127.0.0.11', '+short', '+time=2', '+tries=1', name]).then((s) => s.trim());

describe('outbound and isolation', () => {
  let a: Netns;
  let b: Netns;
  let c: Netns;
  beforeAll(async () => {
    await host.ok('network', 'create', 'front', '--subnet', '10.96.0.0/24');
    await host.ok('network', 'create', 'back', '--subnet', '10.97.0.0/24');
    await host.ok('network', 'create', 'vault', '--subnet', '10.98.0.0/24', '--internal');
    a = await attached('front', 'fa');
    b = await attached('back', 'ba');
    c = await attached('vault', 'va');
  });

  it('a sandbox reaches the outside, masqueraded behind the host', async () => {
    const seen = await NsServer.http(inet, 8000, 'hello');
    made.push(seen);
    expect(await curl(a, 'http://203.0.113.2:8000/')).toBe('hello');
    // conntrack in the host shows the translation to the host's uplink address.
    const ct = await host.ns.exec('conntrack', ['-L', '-p', 'tcp', '--dport', '8000']).catch(() => '');
    expect(ct).toMatch(/src=10\.96\.0\.2 .*dst=203\.0\.113\.2 .*src=203\.0\.113\.2 dst=203\.0\.113\.1/);
  });

  it('two networks neither reach nor resolve each other', async () => {
    expect(await reaches(a, '10.97.0.2')).toBe(false);
    expect(await reaches(b, '10.96.0.2')).toBe(false);
    expect(await dig(a, 'ba')).toBe('');
  });

  it('an internal network reaches neither the outside nor other networks, and gets no default route', async () => {
    expect(await reaches(c, '203.0.113.2')).toBe(false);
    expect(await reaches(c, '10.96.0.2')).toBe(false);
    expect(await reaches(a, '10.98.0.2')).toBe(false);
    expect(await c.exec('ip', ['route', 'show', 'default'])).toBe('');
  });
});

describe('icc=false', () => {
  it('blocks sandbox to sandbox on the network, not sandbox to gateway', async () => {
    await host.ok('network', 'create', 'quiet', '--subnet', '10.99.0.0/24', '--icc=false');
    const x = await attached('quiet', 'qx');
    await attached('quiet', 'qy');
    expect(await reaches(x, '10.99.0.1')).toBe(true);
    expect(await reaches(x, '10.99.0.3')).toBe(false);
  });
});

describe('published ports', () => {
  let web: Netns;
  let peer: Netns;
  beforeAll(async () => {
    await host.ok('network', 'create', 'pub', '--subnet', '10.100.0.0/24');
    web = await Netns.create('cnmd-sb');
    made.push(web);
    made.push(await NsServer.http(web, 80, 'from web'));
    made.push(await NsServer.udpEcho(web, 53, 'udp web'));
    await host.ok('attach', web.name, '--network', 'pub', '--name', 'web', '-p', '8080:80', '-p', '5353:53/udp');
    peer = await attached('pub', 'peer');
  });

  it('reach the container from another host', async () => {
    expect(await curl(inet, 'http://203.0.113.1:8080/')).toBe('from web');
  });

  it("reach the container from the host's own localhost and addresses", async () => {
    expect(await curl(host.ns, 'http://127.0.0.1:8080/')).toBe('from web');
    expect(await curl(host.ns, 'http://203.0.113.1:8080/')).toBe('from web');
  });

  it('reach the container from a container on the same network (hairpin)', async () => {
    expect(await curl(peer, 'http://203.0.113.1:8080/')).toBe('from web');
  });

  it('work for UDP', async () => {
    const out = await inet.exec('bash', ['-c', 'echo ping | timeout 3 nc -u -w 1 203.0.113.1 5353 || true']);
    expect(out).toContain('udp web: ping');
  });

  it('refuse a host port that is taken, changing nothing', async () => {
    const other = await Netns.create('cnmd-sb');
    made.push(other);
    const r = await host.cli('attach', other.name, '--network', 'pub', '-p', '8080:80');
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('SIDECAR_PORT_IN_USE');
    expect(await other.exec('ip', ['-o', 'link'])).not.toContain('eth0');
    expect(await curl(inet, 'http://203.0.113.1:8080/')).toBe('from web');
  });

  it('go away with the endpoint', async () => {
    await host.ok('detach', web.name);
    expect(await curl(inet, 'http://203.0.113.1:8080/')).toBe('');
    const rules = await host.ns.exec('nft', ['list', 'ruleset']);
    expect(rules).not.toContain('8080');
  });
});
