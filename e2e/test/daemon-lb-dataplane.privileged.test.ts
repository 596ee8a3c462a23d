// The daemon's choice of load-balancer data plane on this machine, whose kernel has no IPVS:
// auto falls back to nftables (and says so), ipvs refuses to start, a mode it does not know is
// a config error. The IPVS side runs in the VM (daemon-ipvs.vm.test.ts).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns, run } from '../src/netns.js';

const CNMD = new URL('../../sidecar/bin/cnmd.js', import.meta.url).pathname;
let host: TestHost;

beforeAll(async () => {
  host = await TestHost.start();
});
afterAll(async () => {
  await host?.close();
});

/**
 * Runs `cnmd daemon ARGS`, which must fail before it serves, in a namespace of its own; resolves
 * with its stderr and the nftables tables it left there (none, when it failed before making anything).
 */
async function failing(...args: string[]): Promise<{ err: string; tables: string }> {
  await using ns = await Netns.create('cnmd-h');
  const cmd = [CNMD, 'daemon', '--state-dir', join(host.dir, 'x'), '--socket', join(host.dir, 'x.sock'), ...args];
  const err = await new Promise<string>((resolve) =>
    execFile('nsenter', [`--net=${ns.path}`, process.execPath, ...cmd], (_e, _o, stderr) => resolve(stderr)),
  );
  return { err, tables: await ns.exec('nft', ['list', 'tables']) };
}

it('auto balances with nftables where the kernel has no IPVS, and tells it in /v1/health', async () => {
  await host.ok('network', 'create', 'dpnet', '--subnet', '10.107.0.0/24');
  await host.ok('service', 'create', 'web', '--network', 'dpnet', '--port', '80/tcp');
  const health = JSON.parse(await run('curl', ['-s', '--unix-socket', host.socket, 'http://cnmd/v1/health']));
  expect(health).toEqual({ status: 'ok', lb: { dataplane: 'auto', networks: { dpnet: 'nftables' } } });
  expect(host.log).toMatch(/network dpnet: load balancing with nftables in cnmd-lb-[0-9a-f]{10}/);
});

it.skipIf(existsSync('/proc/net/ip_vs'))('refuses to start with --lb-dataplane ipvs without IPVS', async () => {
  const { err, tables } = await failing('--lb-dataplane', 'ipvs');
  expect(err).toContain('SIDECAR_LB_UNAVAILABLE');
  // nothing made: no state, not even the firewall's tables
  expect(existsSync(join(host.dir, 'x'))).toBe(false);
  expect(tables).toBe('');
});

it('refuses a data plane it does not know', async () => {
  expect((await failing('--lb-dataplane', 'lvs')).err).toContain('SIDECAR_CONFIG_INVALID');
});
