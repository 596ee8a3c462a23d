// Bad service input through the CLI and through the API: each gets a clear error with a stable
// code, and nothing is programmed: the host's and the load-balancer sandbox's nftables
// rulesets, the state file (IPAM's allocations and the records) and the service list are as
// they were.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns, run } from '../src/netns.js';

let host: TestHost;
const made: Netns[] = [];
let lbns: string;
let sandbox: Netns;

beforeAll(async () => {
  host = await TestHost.start();
  const id = (
    await host.ok('network', 'create', 'enet', '--subnet', '10.109.0.0/24', '--subnet', 'fd00:109::/64')
  ).trim();
  lbns = `cnmd-lb-${id.slice(0, 10)}`;
  await host.ok('network', 'create', 'onet', '--subnet', '10.110.0.0/24');
  await host.ok('service', 'create', 'web', '--network', 'enet', '--port', '80/tcp', '--publish', '8080:80/tcp');
  await host.ok('service', 'create', 'other', '--network', 'onet', '--mode', 'dnsrr');
  const pub = await Netns.create('cnmd-sb');
  made.push(pub);
  await host.ok('attach', pub.name, '--network', 'enet', '--publish', '9090:80');
  sandbox = await Netns.create('cnmd-sb');
  made.push(sandbox);
});
afterAll(async () => {
  for (const ns of made) await ns.remove().catch(() => {});
  await host?.close();
});

/** The daemon's store (IPAM's allocations, the records) as key → value: the snapshot, then
 * the journal's writes (ipam/src/stores/file.ts). Revisions left out: a refused request may
 * write and take back, which is no change. */
async function stored(): Promise<Map<string, string>> {
  const path = join(host.dir, 'state', 'state.json');
  const kv = new Map<string, string>();
  const snap = await readFile(path, 'utf8').catch(() => '');
  if (snap) for (const [k, , v] of (JSON.parse(snap) as { entries: [string, number, string][] }).entries) kv.set(k, v);
  const log = await readFile(`${path}.log`, 'utf8').catch(() => '');
  for (const line of log.split('\n').filter(Boolean)) {
    for (const [k, , v] of JSON.parse(line.slice(13)) as [string, number, string | null][]) {
      if (v === null) kv.delete(k);
      else kv.set(k, v);
    }
  }
  return kv;
}

/** Everything a refused request must leave as it was. */
async function snapshot(): Promise<Record<string, string>> {
  return {
    hostRules: await host.ns.exec('nft', ['list', 'ruleset']),
    lbRules: await run('ip', ['netns', 'exec', lbns, 'nft', 'list', 'ruleset']),
    state: JSON.stringify([...(await stored()).entries()].sort()),
    services: await host.ok('service', 'ls', '--json'),
    sandboxLinks: await sandbox.exec('ip', ['-o', 'link']),
  };
}

/** POSTs to the admin API with curl: the HTTP status and the error code. */
async function api(path: string, body: unknown): Promise<string> {
  const out = await run('curl', [
    '-s',
    '--unix-socket',
    host.socket,
    '-H',
    'content-type: application/json',
    '-d',
    JSON.stringify(body),
    '-w',
    ' %{http_code}',
    `http://cnmd/v1${path}`,
  ]);
  const cut = out.lastIndexOf(' ');
  return `${out.slice(cut + 1)} ${(JSON.parse(out.slice(0, cut)) as { code: string }).code}`;
}

const svc = (over: Record<string, unknown>) => ({ name: 'x', network: 'enet', ports: ['80/tcp'], ...over });

it.each<[string, string[], [string, unknown], string]>([
  [
    'an unknown scheduler',
    ['service', 'create', 'x', '--network', 'enet', '--scheduler', 'random'],
    ['/services', svc({ scheduler: 'random' })],
    '400 API_INVALID_ARGUMENT',
  ],
  [
    'a VIP outside the subnet',
    ['service', 'create', 'x', '--network', 'enet', '--vip', '10.9.9.9'],
    ['/services', svc({ vip: '10.9.9.9' })],
    '400 IPAM_ADDRESS_OUT_OF_RANGE',
  ],
  [
    'an IPv6 VIP outside the subnet (after the IPv4 one was taken)',
    ['service', 'create', 'x', '--network', 'enet', '--vip', 'fd00:999::5'],
    ['/services', svc({ vip6: 'fd00:999::5' })],
    '400 IPAM_ADDRESS_OUT_OF_RANGE',
  ],
  [
    'an IPv6 VIP on a network without IPv6',
    ['service', 'create', 'x', '--network', 'onet', '--vip', 'fd00:110::5'],
    ['/services', svc({ network: 'onet', vip6: 'fd00:110::5' })],
    '400 SIDECAR_INVALID_ARGUMENT',
  ],
  [
    'a published port another service holds',
    ['service', 'create', 'x', '--network', 'enet', '--port', '80/tcp', '--publish', '8080:80/tcp'],
    ['/services', svc({ publish: ['8080:80/tcp'] })],
    '409 SIDECAR_PORT_IN_USE',
  ],
  [
    'a published port a container holds',
    ['service', 'create', 'x', '--network', 'enet', '--port', '80/tcp', '--publish', '9090:80/tcp'],
    ['/services', svc({ publish: ['9090:80'] })],
    '409 SIDECAR_PORT_IN_USE',
  ],
  [
    "a container's published port a service holds",
    ['attach', '%SANDBOX%', '--network', 'enet', '--publish', '8080:80'],
    ['/endpoints', { sandbox: '%SANDBOX%', network: 'enet', publish: ['8080:80'] }],
    '409 SIDECAR_PORT_IN_USE',
  ],
  [
    'a task of a service on another network',
    ['attach', '%SANDBOX%', '--network', 'enet', '--service', 'other'],
    ['/endpoints', { sandbox: '%SANDBOX%', network: 'enet', service: 'other' }],
    '400 SIDECAR_SERVICE_WRONG_NETWORK',
  ],
  [
    'a bad --health',
    ['service', 'create', 'x', '--network', 'enet', '--health', 'tcp:eighty,interval=2s'],
    ['/services', svc({ health: 'udp:53' })],
    '400 API_INVALID_ARGUMENT',
  ],
])('refuses %s through the CLI and the API, changing nothing', async (_, args, [path, body], want) => {
  const fill = <T>(v: T): T => JSON.parse(JSON.stringify(v).replaceAll('%SANDBOX%', sandbox.name)) as T;
  const before = await snapshot();
  // What is compared holds something: the service web, its LB rules, its published port.
  expect(before.state).toContain('8080');
  expect(before.lbRules).toContain('cnmd_lb');
  expect(before.hostRules).toContain('8080');
  const r = await host.cli(...fill(args));
  expect(r.code).toBe(1);
  expect(r.err).toContain(`cnmd: ${want.split(' ')[1]}: `);
  expect(await snapshot()).toEqual(before);
  expect(await api(path, fill(body))).toBe(want);
  expect(await snapshot()).toEqual(before);
});
