// Services through the daemon: names that answer their tasks (dnsrr), tasks., SRV for named
// ports, weights 0 leaving the answers, and the errors a user meets.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns } from '../src/netns.js';

let host: TestHost;
const made: Netns[] = [];
let client: Netns;

beforeAll(async () => {
  host = await TestHost.start();
  await host.ok('network', 'create', 'svc', '--subnet', '10.103.0.0/24');
  client = await Netns.create('cnmd-sb');
  made.push(client);
  await host.ok('attach', client.name, '--network', 'svc', '--name', 'client');
});
afterAll(async () => {
  for (const ns of made) await ns.remove().catch(() => {});
  await host?.close();
});

const dig = (...args: string[]) =>
  client
    .exec('dig', ['@127.0.0.11', '+short', '+time=2', '+tries=1', ...args])
    .then((s) => s.trim().split('\n').filter(Boolean).sort());

async function task(name: string, ...extra: string[]): Promise<Netns> {
  const ns = await Netns.create('cnmd-sb');
  made.push(ns);
  await host.ok('attach', ns.name, '--network', 'svc', '--name', name, '--service', 'api', ...extra);
  return ns;
}

it('a dnsrr service answers its ready tasks; tasks. too; SRV for named ports', async () => {
  await host.ok('service', 'create', 'api', '--network', 'svc', '--mode', 'dnsrr', '--port', 'http=80/tcp');
  expect(await dig('api')).toEqual([]);
  await task('api-1');
  await task('api-2');
  const drained = await task('api-3', '--weight', '0');
  expect(await dig('api')).toEqual(['10.103.0.3', '10.103.0.4']);
  expect(await dig('tasks.api')).toEqual(['10.103.0.3', '10.103.0.4']);
  expect(await dig('_http._tcp.api', 'SRV')).toEqual(['0 0 80 api-1.', '0 0 80 api-2.'].map((s) => s).sort());
  const backends = await host.json<{ name: string; weight: number }[]>('service', 'backends', 'api');
  expect(backends.map((b) => `${b.name}:${b.weight}`).sort()).toEqual(['api-1:1', 'api-2:1', 'api-3:0']);
  // A task that leaves stops answering at once.
  await host.ok('detach', drained.name);
  await host.ok('detach', made[1]!.name);
  expect(await dig('api')).toEqual(['10.103.0.4']);
});

it('refuses what cannot be done, changing nothing', async () => {
  const before = await host.json('service', 'ls');
  const cases: [string[], string][] = [
    [['service', 'create', 'x', '--network', 'nope', '--mode', 'dnsrr'], 'SIDECAR_NETWORK_NOT_FOUND'],
    [['service', 'create', 'x', '--network', 'svc', '--scheduler', 'fastest'], 'API_INVALID_ARGUMENT'],
    [['service', 'create', 'api', '--network', 'svc', '--mode', 'dnsrr'], 'SIDECAR_SERVICE_EXISTS'],
    [['service', 'rm', 'api'], 'SIDECAR_SERVICE_IN_USE'],
    [['service', 'rm', 'ghost'], 'SIDECAR_SERVICE_NOT_FOUND'],
    [['network', 'rm', 'svc'], 'SIDECAR_NETWORK_IN_USE'],
  ];
  for (const [args, code] of cases) {
    const r = await host.cli(...args);
    expect(r.code, args.join(' ')).not.toBe(0);
    expect(r.err, args.join(' ')).toContain(code);
  }
  const ns = await Netns.create('cnmd-sb');
  made.push(ns);
  expect((await host.cli('attach', ns.name, '--network', 'svc', '--service', 'ghost')).err).toContain(
    'SIDECAR_SERVICE_NOT_FOUND',
  );
  expect(await ns.exec('ip', ['-o', 'link'])).not.toContain('eth0');
  expect(await host.json('service', 'ls')).toEqual(before);
});
