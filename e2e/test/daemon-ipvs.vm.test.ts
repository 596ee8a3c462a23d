// The real daemon in the IPVS VM: with --lb-dataplane auto it balances vip services with IPVS,
// which it programs itself (ipvsadm and iptables-save only look), with an iptables mark per VIP
// and port and the SNAT that brings replies back through the load-balancer sandbox. The same
// scenario as daemon-vip.privileged.test.ts, which runs on nftables where there is no IPVS.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns, run } from '../src/netns.js';
import { NsServer } from '../src/servers.js';

// Under TCG on a shared host a node process takes seconds to start: the daemon's restart alone
// can take a minute.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 300_000 });

let host: TestHost;
let lbns: string;
let client: Netns;
const made: { remove?: () => Promise<void>; stop?: () => Promise<void> }[] = [];
const backends = new Map<string, Netns>();

beforeAll(async () => {
  host = await TestHost.start();
  const id = (
    await host.ok('network', 'create', 'ipvsnet', '--subnet', '10.106.0.0/24', '--subnet', 'fd00:106::/64')
  ).trim();
  lbns = `cnmd-lb-${id.slice(0, 10)}`;
  client = await Netns.create('cnmd-sb');
  made.push(client);
  await host.ok('attach', client.name, '--network', 'ipvsnet', '--name', 'client');
});
afterAll(async () => {
  for (const m of made.reverse()) await (m.stop ?? m.remove)?.call(m).catch(() => {});
  await host?.close();
});

const inLb = (cmd: string, ...args: string[]) => run('ip', ['netns', 'exec', lbns, cmd, ...args]);
const curl = (url: string) =>
  client.exec('curl', ['-s', '--max-time', '3', url]).then(
    (s) => s,
    () => '',
  );
async function served(url: string, n: number): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add(await curl(url));
  return [...seen].sort();
}
/** `-> ADDRESS:PORT Masq WEIGHT` lines of the fwmark service `mark`, as "address weight". */
async function dests(mark: number): Promise<string[]> {
  const out = await inLb('ipvsadm', '-Ln');
  const block = out.split(/\n(?=FWM|TCP|UDP)/).find((b) => b.startsWith(`FWM  ${mark} `)) ?? '';
  return [...block.matchAll(/->\s+(\S+):0\s+Masq\s+(\d+)/g)].map((m) => `${m[1]} ${m[2]}`).sort();
}
/** The connections the fwmark service `mark` has counted (ipvsadm -Ln --stats). */
const conns = async (mark: number) =>
  Number(new RegExp(`^FWM\\s+${mark}\\s+(\\d+)`, 'm').exec(await inLb('ipvsadm', '-Ln', '--stats'))?.[1] ?? -1);
const natRules = async () => (await inLb('iptables-save', '-t', 'nat')).split('\n').filter((l) => l.startsWith('-A'));
const markRules = async () =>
  (await inLb('iptables-save', '-t', 'mangle')).split('\n').filter((l) => l.startsWith('-A'));

async function backend(name: string, service: string, ...extra: string[]): Promise<string> {
  const ns = await Netns.create('cnmd-sb');
  made.push(ns);
  made.push(await NsServer.http(ns, 80, name));
  backends.set(name, ns);
  const ep = await host.json<{ ip: string }>(
    'attach',
    ns.name,
    '--network',
    'ipvsnet',
    '--name',
    name,
    '--service',
    service,
    ...extra,
  );
  return ep.ip;
}

let web: { vip: string; mark: number };

it('chooses IPVS and balances a VIP over three tasks, marked by iptables, round robin', async () => {
  await host.ok('service', 'create', 'web', '--network', 'ipvsnet', '--port', '80/tcp');
  web = await host.json<{ vip: string; mark: number }>('service', 'inspect', 'web');
  const ips = [await backend('web-1', 'web'), await backend('web-2', 'web'), await backend('web-3', 'web')];
  const health = JSON.parse(await run('curl', ['-s', '--unix-socket', host.socket, 'http://cnmd/v1/health']));
  expect(health.lb).toEqual({ dataplane: 'auto', networks: { ipvsnet: 'ipvs' } });
  expect(host.log).toContain(`network ipvsnet: load balancing with ipvs in ${lbns}`);
  expect(await dests(web.mark)).toEqual(ips.map((ip) => `${ip} 1`).sort());
  expect(await markRules()).toEqual([
    '-A PREROUTING -j CNMD-LB-MARK',
    '-A OUTPUT -j CNMD-LB-MARK',
    `-A CNMD-LB-MARK -d ${web.vip}/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x${web.mark.toString(16)}/0xffffffff`,
  ]);
  expect(await served(`http://${web.vip}/`, 6)).toEqual(['web-1', 'web-2', 'web-3']);
  expect(await served('http://web/', 6)).toEqual(['web-1', 'web-2', 'web-3']);
  // the SNAT that made those replies come back through the sandbox (the client is on the backends' subnet)
  expect(await inLb('iptables-save', '-t', 'nat')).toMatch(
    /-A CNMD-LB-SNAT -d 10\.106\.0\.0\/24 -m ipvs --ipvs -j SNAT --to-source 10\.106\.0\.\d+/,
  );
});

it('balances its IPv6 VIP too, marked by ip6tables', async () => {
  const { vip6 } = await host.json<{ vip6: string }>('service', 'inspect', 'web');
  expect(vip6).toMatch(/^fd00:106::/);
  const rules = (await inLb('ip6tables-save')).split('\n').filter((l) => l.startsWith('-A'));
  expect(rules).toContainEqual(
    expect.stringMatching(new RegExp(`^-A CNMD-LB-MARK -d ${vip6}/128 -p tcp -m tcp --dport 80 -j MARK`)),
  );
  expect(rules).toContainEqual(
    expect.stringMatching(/^-A CNMD-LB-SNAT -d fd00:106::\/64 -m ipvs --ipvs -j SNAT --to-source fd00:106::/),
  );
  expect(await served(`http://[${vip6}]/`, 6)).toEqual(['web-1', 'web-2', 'web-3']);
});

it('honours weights (wrr)', async () => {
  await host.ok('service', 'create', 'heavy', '--network', 'ipvsnet', '--port', '80/tcp', '--scheduler', 'wrr');
  await backend('heavy-1', 'heavy', '--weight', '3');
  await backend('heavy-2', 'heavy', '--weight', '1');
  // by its IPv4 VIP: the name answers AAAA too, and the IPv6 VIP is a service with a wrr of its own
  const { vip } = await host.json<{ vip: string }>('service', 'inspect', 'heavy');
  const count = new Map<string, number>();
  for (let i = 0; i < 16; i++) {
    const who = await curl(`http://${vip}/`);
    count.set(who, (count.get(who) ?? 0) + 1);
  }
  // wrr sends 3 of every 4 new connections to heavy-1
  expect(Object.fromEntries(count)).toEqual({ 'heavy-1': 12, 'heavy-2': 4 });
});

it('drains a task that leaves (weight 0), then removes it', async () => {
  const ip1 = (await host.json<{ address: string; name: string }[]>('service', 'backends', 'web')).find(
    (b) => b.name === 'web-1',
  )!.address;
  await host.ok('detach', backends.get('web-1')!.name);
  expect(await dests(web.mark)).toContain(`${ip1} 0`);
  expect(await served('http://web/', 6)).toEqual(['web-2', 'web-3']);
  // the daemon's drain is 10 s
  for (let i = 0; i < 60 && (await dests(web.mark)).length > 2; i++) await new Promise((r) => setTimeout(r, 500));
  expect((await dests(web.mark)).map((d) => d.split(' ')[0])).not.toContain(ip1);
});

it('keeps balancing through a kill -9 and restart, and duplicates nothing', async () => {
  const heavy = await host.json<{ mark: number }>('service', 'inspect', 'heavy');
  // IPVS's counters lag up to 2 s (DESIGN.md): heavy's 16 connections, once counted
  for (let i = 0; i < 20 && (await conns(heavy.mark)) < 16; i++) await new Promise((r) => setTimeout(r, 500));
  const before = {
    web: await dests(web.mark),
    heavy: await dests(heavy.mark),
    mangle: await markRules(),
    nat: await natRules(),
  };
  await host.kill9();
  expect(await served(`http://${web.vip}/`, 4)).toEqual(['web-2', 'web-3']);
  await host.startDaemon();
  expect(await served('http://web/', 4)).toEqual(['web-2', 'web-3']);
  expect((await inLb('ipvsadm', '-Ln')).match(/^FWM /gm)).toHaveLength(4); // web and heavy, IPv4 and IPv6
  expect({ web: await dests(web.mark), heavy: await dests(heavy.mark) }).toEqual({
    web: before.web,
    heavy: before.heavy,
  });
  expect(await markRules()).toEqual(before.mangle);
  expect(await natRules()).toEqual(before.nat);
  // the same virtual service, never deleted and made again (which would zero its counters)
  expect(await conns(heavy.mark)).toBeGreaterThanOrEqual(16);
  expect(before.nat).toHaveLength(2); // the jump and the one SNAT
});

it('service rm takes away its IPVS service, its marks and its VIP', async () => {
  const heavy = await host.json<{ vip: string; vip6: string; mark: number }>('service', 'inspect', 'heavy');
  for (const name of ['heavy-1', 'heavy-2']) await host.ok('detach', backends.get(name)!.name);
  await host.ok('service', 'rm', 'heavy');
  expect(await inLb('ipvsadm', '-Ln')).not.toMatch(new RegExp(`FWM  ${heavy.mark} `));
  expect((await markRules()).join('\n')).not.toContain(heavy.vip);
  expect(await inLb('ip6tables-save', '-t', 'mangle')).not.toContain(heavy.vip6);
  expect((await inLb('ipvsadm', '-Ln')).match(/^FWM /gm)).toHaveLength(2); // web's
  expect(await inLb('ip', '-o', 'addr', 'show', 'dev', 'eth0')).not.toContain(` ${heavy.vip}/32`);
  expect(await served('http://web/', 4)).toEqual(['web-2', 'web-3']);
});
