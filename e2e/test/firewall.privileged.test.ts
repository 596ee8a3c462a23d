// The firewall as a user sees it: real clients and servers in sandboxes of a simulated host
// (firewall-lab.ts), with the firewall programming that host's namespace only.
import type { FwNetwork, FwPort } from '@cnmd/sidecar/internal';
import { describe, expect, test } from 'vitest';
import { HOST, HOST6, Lab, PEER, PEER6 } from './firewall-lab.js';

/** How long a probe that should get no answer waits for one (ms); an answer may take longer,
 * when a first SYN is lost to neighbour discovery, so probes expecting one wait 3 s. */
const BLOCKED = 1500;

const A: FwNetwork = {
  name: 'a',
  bridge: 'br-a',
  subnet: '10.1.0.0/24',
  subnet6: 'fd00:a::/64',
  internal: false,
  icc: true,
};
const B: FwNetwork = { name: 'b', bridge: 'br-b', subnet: '10.2.0.0/24', internal: false, icc: true };
const C: FwNetwork = { name: 'c', bridge: 'br-c', subnet: '10.3.0.0/24', internal: false, icc: false };
const D: FwNetwork = { name: 'd', bridge: 'br-d', subnet: '10.4.0.0/24', internal: true, icc: true };

const tcp8080: FwPort = { network: 'a', bridge: 'br-a', proto: 'tcp', hostPort: 8080, address: '10.1.0.2', port: 80 };
const udp5353: FwPort = { network: 'a', bridge: 'br-a', proto: 'udp', hostPort: 5353, address: '10.1.0.2', port: 53 };
const tcp8080v6: FwPort = { ...tcp8080, address: 'fd00:a::2' };

/** Network A with two sandboxes (dual stack), the servers of the first one, the internet's. */
async function networkA(lab: Lab) {
  await lab.bridge('br-a', '10.1.0.1/24', 'fd00:a::1/64');
  const s1 = await lab.sandbox('br-a', '10.1.0.2/24', '10.1.0.1', 'fd00:a::2/64', 'fd00:a::1');
  const s2 = await lab.sandbox('br-a', '10.1.0.3/24', '10.1.0.1', 'fd00:a::3/64', 'fd00:a::1');
  await lab.server(s1, 'tcp', 80);
  await lab.server(s1, 'udp', 53);
  await lab.server(lab.inet, 'tcp', 7000);
  return { s1, s2 };
}

// Bridged traffic takes other paths with br_netfilter (through the inet hooks, DNAT back into
// the same bridge short-cut by the bridge) and without it: the rules must hold in both.
describe.each([
  ['without br_netfilter', false],
  ['with br_netfilter', true],
])('%s', (_, brNetfilter) => {
  test('a sandbox reaches the internet as the host (IPv4 and IPv6); the internet reaches no sandbox', async () => {
    await using lab = await Lab.create({ brNetfilter });
    const { s1 } = await networkA(lab);
    // Without the firewall, packets go through routed, with the sandbox's own address.
    expect(await lab.probe(s1, 'tcp', PEER, 7000)).toBe('10.1.0.2');
    expect(await lab.probe(lab.inet, 'tcp', '10.1.0.2', 80)).toBe(PEER);

    const fw = lab.firewall();
    await fw.start();
    await fw.addNetwork(A);
    expect(await lab.probe(s1, 'tcp', PEER, 7000)).toBe(HOST);
    expect(await lab.probe(s1, 'tcp', PEER6, 7000)).toBe(HOST6);
    expect(await lab.probe(lab.inet, 'tcp', '10.1.0.2', 80, BLOCKED)).toBe(''); // not published
    expect(await lab.probe(lab.inet, 'tcp', 'fd00:a::2', 80, BLOCKED)).toBe('');
  });

  test('an internal network: nothing out, nothing in, the gateway still answers', async () => {
    await using lab = await Lab.create({ brNetfilter });
    await lab.bridge('br-d', '10.4.0.1/24');
    const s = await lab.sandbox('br-d', '10.4.0.2/24', '10.4.0.1');
    await lab.server(s, 'tcp', 80);
    await lab.server(lab.inet, 'tcp', 7000);
    await lab.server(lab.host, 'tcp', 7001);
    expect(await lab.probe(s, 'tcp', PEER, 7000)).toBe('10.4.0.2');

    const fw = lab.firewall();
    await fw.addNetwork(D);
    expect(await lab.probe(s, 'tcp', PEER, 7000, BLOCKED)).toBe('');
    expect(await lab.ping(s, PEER)).toBe(false);
    expect(await lab.probe(lab.inet, 'tcp', '10.4.0.2', 80, BLOCKED)).toBe('');
    // libnetwork leaves the host reachable from an internal network (its rules are all in FORWARD).
    expect(await lab.ping(s, '10.4.0.1')).toBe(true);
    expect(await lab.probe(s, 'tcp', '10.4.0.1', 7001)).toBe('10.4.0.2');
    await expect(fw.publish({ ...tcp8080, network: 'd', bridge: 'br-d', address: '10.4.0.2' })).rejects.toMatchObject({
      code: 'SIDECAR_INVALID_ARGUMENT',
    });
  });

  test('two networks cannot reach each other, in either direction, and both reach the internet', async () => {
    await using lab = await Lab.create({ brNetfilter });
    await lab.bridge('br-a', '10.1.0.1/24');
    await lab.bridge('br-b', '10.2.0.1/24');
    const a = await lab.sandbox('br-a', '10.1.0.2/24', '10.1.0.1');
    const b = await lab.sandbox('br-b', '10.2.0.2/24', '10.2.0.1');
    await lab.server(a, 'tcp', 80);
    await lab.server(b, 'tcp', 80);
    await lab.server(lab.inet, 'tcp', 7000);
    expect(await lab.probe(a, 'tcp', '10.2.0.2', 80)).toBe('10.1.0.2');

    const fw = lab.firewall();
    await fw.addNetwork({ ...A, subnet6: undefined });
    await fw.addNetwork(B);
    expect(await lab.probe(a, 'tcp', '10.2.0.2', 80, BLOCKED)).toBe('');
    expect(await lab.probe(b, 'tcp', '10.1.0.2', 80, BLOCKED)).toBe('');
    expect(await lab.ping(a, '10.2.0.2')).toBe(false);
    expect(await lab.ping(b, '10.1.0.2')).toBe(false);
    expect(await lab.probe(a, 'tcp', PEER, 7000)).toBe(HOST);
    expect(await lab.probe(b, 'tcp', PEER, 7000)).toBe(HOST);
  });

  test('icc=false: sandboxes of one bridge cannot talk; each reaches its gateway and the internet', async () => {
    await using lab = await Lab.create({ brNetfilter });
    await lab.bridge('br-c', '10.3.0.1/24');
    const c1 = await lab.sandbox('br-c', '10.3.0.2/24', '10.3.0.1');
    const c2 = await lab.sandbox('br-c', '10.3.0.3/24', '10.3.0.1');
    const { s1, s2 } = await networkA(lab);
    await lab.server(c2, 'tcp', 80);
    await lab.server(lab.host, 'tcp', 7001);
    expect(await lab.probe(c1, 'tcp', '10.3.0.3', 80)).toBe('10.3.0.2');

    const fw = lab.firewall();
    await fw.addNetwork(C);
    await fw.addNetwork(A);
    expect(await lab.probe(c1, 'tcp', '10.3.0.3', 80, BLOCKED)).toBe('');
    expect(await lab.ping(c1, '10.3.0.3')).toBe(false);
    expect(await lab.ping(c1, '10.3.0.1')).toBe(true);
    expect(await lab.probe(c1, 'tcp', '10.3.0.1', 7001)).toBe('10.3.0.2');
    expect(await lab.probe(c1, 'tcp', PEER, 7000)).toBe(HOST);
    // icc is per network: on A (icc=true) the sandboxes still talk, in both families.
    expect(await lab.probe(s2, 'tcp', '10.1.0.2', 80)).toBe('10.1.0.3');
    expect(await lab.probe(s2, 'tcp', 'fd00:a::2', 80)).toBe('fd00:a::3');
    expect(await lab.ping(s1, '10.1.0.3')).toBe(true);
  });

  test('published TCP and UDP ports answer the internet, the host on 127.0.0.1, and the same bridge (hairpin)', async () => {
    await using lab = await Lab.create({ brNetfilter });
    const { s1, s2 } = await networkA(lab);
    const fw = lab.firewall();
    await fw.addNetwork(A);
    await fw.publish(tcp8080);
    await fw.publish(udp5353);
    await fw.publish(tcp8080v6);

    // A published port is reached through the host, never at the container's own address
    // (Docker's "DROP DIRECT ACCESS"), though the internet has a route to it.
    expect(await lab.probe(lab.inet, 'tcp', '10.1.0.2', 80, BLOCKED)).toBe('');
    // From outside the client keeps its address, as with Docker.
    expect(await lab.probe(lab.inet, 'tcp', HOST, 8080)).toBe(PEER);
    expect(await lab.probe(lab.inet, 'udp', HOST, 5353)).toBe(PEER);
    expect(await lab.probe(lab.inet, 'tcp', HOST6, 8080)).toBe(PEER6);
    // From the host's localhost: route_localnet on the bridge, masqueraded to the gateway.
    expect((await lab.host.exec('sysctl', ['-n', 'net.ipv4.conf.br-a.route_localnet'])).trim()).toBe('1');
    expect(await lab.probe(lab.host, 'tcp', '127.0.0.1', 8080)).toBe('10.1.0.1');
    expect(await lab.probe(lab.host, 'udp', '127.0.0.1', 5353)).toBe('10.1.0.1');
    expect(await lab.probe(lab.host, 'tcp', HOST, 8080)).toBe(HOST);
    // From another sandbox of the bridge, through the host's address or the gateway's.
    expect(await lab.probe(s2, 'tcp', HOST, 8080)).toBe('10.1.0.1');
    expect(await lab.probe(s2, 'udp', HOST, 5353)).toBe('10.1.0.1');
    expect(await lab.probe(s2, 'tcp', '10.1.0.1', 8080)).toBe('10.1.0.1');
    expect(await lab.probe(s2, 'tcp', HOST6, 8080)).toBe('fd00:a::1');
    // The container itself, through its own published port: the endpoint code sets the
    // hairpin flag on its bridge port (veth0 here), needed when br_netfilter bridges the
    // DNATed packet straight back out of the port it came in on.
    await lab.host.exec('ip', ['link', 'set', 'veth0', 'type', 'bridge_slave', 'hairpin', 'on']);
    expect(await lab.probe(s1, 'tcp', HOST, 8080)).toBe('10.1.0.1');
    expect(await lab.probe(s1, 'udp', HOST, 5353)).toBe('10.1.0.1');
    // Unpublished: gone from everywhere.
    await fw.unpublish(tcp8080);
    expect(await lab.probe(lab.inet, 'tcp', HOST, 8080, BLOCKED)).toBe('');
    expect(await lab.probe(lab.host, 'tcp', '127.0.0.1', 8080, BLOCKED)).toBe('');
    expect(await lab.probe(lab.inet, 'udp', HOST, 5353)).toBe(PEER);
  });

  test('a sandbox cannot reach the host’s 127.0.0.1 services through route_localnet (CVE-2020-8558)', async () => {
    await using lab = await Lab.create({ brNetfilter });
    const { s2 } = await networkA(lab);
    await lab.server(lab.host, 'tcp', 7002); // on ::, so on 127.0.0.1 too
    // A sandbox with NET_ADMIN sends to 127.0.0.2 through its gateway.
    await s2.exec('ip', ['route', 'del', 'local', '127.0.0.0/8', 'dev', 'lo', 'table', 'local']);
    await s2.exec('ip', ['route', 'add', '127.0.0.2/32', 'via', '10.1.0.1']);
    await s2.exec('sysctl', ['-q', '-w', 'net.ipv4.conf.eth0.route_localnet=1']);
    await lab.host.exec('sysctl', ['-q', '-w', 'net.ipv4.conf.br-a.route_localnet=1']);
    expect(await lab.probe(s2, 'tcp', '127.0.0.2', 7002)).toBe('10.1.0.3'); // what the rule is for

    const fw = lab.firewall();
    await fw.addNetwork(A);
    await fw.publish(tcp8080);
    expect(await lab.probe(s2, 'tcp', '127.0.0.2', 7002, BLOCKED)).toBe('');
    expect(await lab.probe(lab.host, 'tcp', '127.0.0.1', 8080)).toBe('10.1.0.1');
  });
});

test('publishing a host port twice fails with SIDECAR_PORT_IN_USE and changes nothing', async () => {
  await using lab = await Lab.create();
  await networkA(lab);
  const fw = lab.firewall();
  await fw.addNetwork(A);
  await fw.publish(tcp8080);
  const before = await lab.ruleset();
  await expect(fw.publish({ ...tcp8080, address: '10.1.0.3' })).rejects.toMatchObject({ code: 'SIDECAR_PORT_IN_USE' });
  await expect(fw.publish({ ...tcp8080, hostIp: HOST })).rejects.toMatchObject({ code: 'SIDECAR_PORT_IN_USE' });
  expect(await lab.ruleset()).toBe(before);
  expect(await lab.probe(lab.inet, 'tcp', HOST, 8080)).toBe(PEER);
});

test('removeNetwork takes all its rules; close removes cnmd’s tables and nothing else', async () => {
  await using lab = await Lab.create();
  const { s1 } = await networkA(lab);
  await lab.host.exec('nft', ['add table inet other; add chain inet other c { type filter hook input priority 0; }']);
  const fw = lab.firewall();
  await fw.addNetwork(A);
  await fw.addNetwork(B);
  await fw.publish(tcp8080);
  await fw.removeNetwork('a');
  const rules = await lab.ruleset();
  expect(rules).not.toMatch(/br-a|10\.1\.0|fd00:a/);
  expect(rules).toMatch(/br-b/);
  expect(await lab.probe(s1, 'tcp', PEER, 7000)).toBe('10.1.0.2'); // no masquerade any more
  expect(await lab.probe(lab.inet, 'tcp', HOST, 8080, BLOCKED)).toBe('');
  await fw.close();
  await fw.close();
  expect(await lab.host.exec('nft', ['list', 'tables'])).toBe('table inet other\n');
});

test('reconcile after a restart: start keeps the rules, reconcile makes them exactly the state', async () => {
  await using lab = await Lab.create();
  await networkA(lab);
  await lab.bridge('br-b', '10.2.0.1/24');
  const old = lab.firewall();
  await old.addNetwork(A);
  await old.addNetwork(B);
  await old.publish(tcp8080);
  await old.publish(udp5353);

  // A new daemon: start() keeps what is in force until reconcile says otherwise.
  const fw = lab.firewall();
  await fw.start();
  expect(await lab.probe(lab.inet, 'tcp', HOST, 8080)).toBe(PEER);
  const tcp9090 = { ...tcp8080, hostPort: 9090 };
  await fw.reconcile([A], [tcp9090, udp5353]);
  expect(await lab.probe(lab.inet, 'tcp', HOST, 8080, BLOCKED)).toBe('');
  expect(await lab.probe(lab.inet, 'tcp', HOST, 9090)).toBe(PEER);
  expect(await lab.probe(lab.inet, 'udp', HOST, 5353)).toBe(PEER);
  const reconciled = await lab.ruleset();
  expect(reconciled).not.toMatch(/br-b/);

  // The same state built step by step gives the same ruleset.
  await fw.reset();
  const fresh = lab.firewall();
  await fresh.addNetwork(A);
  await fresh.publish(tcp9090);
  await fresh.publish(udp5353);
  expect(await lab.ruleset()).toBe(reconciled);
});
