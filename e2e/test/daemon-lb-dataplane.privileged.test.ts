// The daemon's choice of load-balancer data plane on this machine, whose kernel has no IPVS:
// auto falls back to nftables (and says so), ipvs refuses to start, a mode it does not know is
// a config error. The IPVS side runs in the VM (daemon-ipvs.vm.test.ts).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { run } from '../src/netns.js';

const CNMD = new URL('../../sidecar/bin/cnmd.js', import.meta.url).pathname;
let host: TestHost;

beforeAll(async () => {
  host = await TestHost.start();
});
afterAll(async () => {
  await host?.close();
});

/** Runs `cnmd daemon ARGS` that must fail before it serves; resolves with its stderr. */
const failing = (...args: string[]) =>
  new Promise<string>((resolve) =>
    execFile(
      process.execPath,
      [CNMD, 'daemon', '--state-dir', join(host.dir, 'x'), '--socket', join(host.dir, 'x.sock'), ...args],
      (_e, _o, stderr) => resolve(stderr),
    ),
  );

it('auto balances with nftables where the kernel has no IPVS, and tells it in /v1/health', async () => {
  await host.ok('network', 'create', 'dpnet', '--subnet', '10.107.0.0/24');
  await host.ok('service', 'create', 'web', '--network', 'dpnet', '--port', '80/tcp');
  const health = JSON.parse(await run('curl', ['-s', '--unix-socket', host.socket, 'http://cnmd/v1/health']));
  expect(health).toEqual({ status: 'ok', lb: { dataplane: 'auto', networks: { dpnet: 'nftables' } } });
  expect(host.log).toMatch(/network dpnet: load balancing with nftables in cnmd-lb-[0-9a-f]{10}/);
});

it.skipIf(existsSync('/proc/net/ip_vs'))('refuses to start with --lb-dataplane ipvs without IPVS', async () => {
  expect(await failing('--lb-dataplane', 'ipvs')).toContain('SIDECAR_LB_UNAVAILABLE');
  expect(existsSync(join(host.dir, 'x'))).toBe(false);
});

it('refuses a data plane it does not know', async () => {
  expect(await failing('--lb-dataplane', 'lvs')).toContain('SIDECAR_CONFIG_INVALID');
});
