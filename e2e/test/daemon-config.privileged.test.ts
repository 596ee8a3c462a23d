// The config file's networks and services: created at start when absent, left as they are on a
// restart, and a bad one refused with a code before anything starts.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';

let dir: string;
let host: TestHost | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cnmd-config-'));
});
afterAll(async () => {
  await host?.close();
  await rm(dir, { recursive: true, force: true });
});

it('creates the declared networks and services at start, and nothing again after a restart', async () => {
  const file = join(dir, 'cnmd.json');
  await writeFile(
    file,
    JSON.stringify({
      networks: [{ name: 'declared', subnet: '10.105.0.0/24' }],
      services: [{ name: 'api', network: 'declared', vip: '10.105.0.2', ports: ['80/tcp'] }],
    }),
  );
  host = await TestHost.start({ args: ['--config', file] });
  const nets = await host.json<{ name: string; subnet: string }[]>('network', 'ls');
  expect(nets.map((n) => [n.name, n.subnet])).toEqual([['declared', '10.105.0.0/24']]);
  const services = () => host!.json<{ name: string; vip: string; ports: unknown[] }[]>('service', 'ls');
  expect((await services()).map((s) => [s.name, s.vip, s.ports.length])).toEqual([['api', '10.105.0.2', 1]]);
  await host.stopDaemon();
  await host.startDaemon();
  expect((await host.json<unknown[]>('network', 'ls')).length).toBe(1);
  expect((await services()).map((s) => [s.name, s.vip])).toEqual([['api', '10.105.0.2']]);
});

it('refuses a config whose service is bad, naming it, with a code', async () => {
  const file = join(dir, 'bad.json');
  await writeFile(file, JSON.stringify({ services: [{ name: 'api', network: 'n', ports: ['http'] }] }));
  const cnmd = new URL('../../sidecar/bin/cnmd.js', import.meta.url).pathname;
  const err = await new Promise<string>((resolve) =>
    execFile(process.execPath, [cnmd, 'daemon', '--config', file], (_e, _o, stderr) => resolve(stderr)),
  );
  expect(err).toContain('SIDECAR_CONFIG_INVALID');
  expect(err).toContain('services[0]');
});
