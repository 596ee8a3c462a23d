// What a hostile or careless API client may name as a sandbox: a FIFO (whose blocking open
// would stop the event loop, and every sandbox's DNS with it), a device node, a namespace file
// outside the places where sandboxes live, and the host's own namespace or the daemon's (whose
// default route an attach would replace). Each gets its code and changes nothing.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns, run } from '../src/netns.js';

const exec = promisify(execFile);
let host: TestHost;
let watcher: Netns;
const cleanup: (() => Promise<unknown>)[] = [];
/** What one test made; gone after it (a FIFO left in /run/netns blocks `ip link`, which opens
 * every file there to name a peer's namespace). */
const scratchFiles: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  host = await TestHost.start();
  await host.ok('network', 'create', 'paths', '--subnet', '10.103.0.0/24');
  watcher = await Netns.create('cnmd-sb');
  cleanup.push(() => watcher.remove());
  await host.ok('attach', watcher.name, '--network', 'paths', '--name', 'watcher');
});

afterEach(async () => {
  for (const fn of scratchFiles.splice(0).reverse()) await fn().catch(() => {});
});

afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => {});
  await host?.close();
});

/** A path under /run/netns that the test removes again. */
function scratch(kind: string): string {
  const p = `/run/netns/cnmd-t-${kind}-${randomBytes(3).toString('hex')}`;
  scratchFiles.push(() => rm(p, { force: true }));
  return p;
}

/** The daemon still answers DNS in a sandbox: its event loop is not stuck. */
async function stillServes(): Promise<void> {
  const out = await watcher.exec('dig', ['@127.0.0.11', '+short', '+time=2', '+tries=1', 'watcher']);
  expect(out.trim()).toMatch(/^10\.103\.0\./);
}

describe('refused with SIDECAR_NETNS_INVALID (400), without blocking', () => {
  it('a FIFO where a named namespace would be: attach, inspect and detach', async () => {
    const fifo = scratch('fifo');
    await exec('mkfifo', [fifo]);
    const before = await host.json<unknown[]>('ps');
    const r = await host.cli('attach', fifo, '--network', 'paths');
    expect(r).toMatchObject({ code: 1 });
    expect(r.err).toContain('SIDECAR_NETNS_INVALID');
    expect(await host.api('GET', `/v1/containers/${encodeURIComponent(fifo)}`)).toMatchObject({ status: 404 });
    expect(await host.api('DELETE', `/v1/endpoints?sandbox=${encodeURIComponent(fifo)}`)).toMatchObject({
      status: 404,
    });
    expect(await host.api('POST', '/v1/endpoints', { sandbox: fifo, network: 'paths' })).toMatchObject({
      status: 400,
      body: { code: 'SIDECAR_NETNS_INVALID' },
    });
    await stillServes();
    expect(await host.json<unknown[]>('ps')).toEqual(before);
  });

  it('a device node', async () => {
    const dev = scratch('dev');
    await exec('mknod', [dev, 'c', '1', '3']); // /dev/null's numbers
    const r = await host.api('POST', '/v1/endpoints', { sandbox: dev, network: 'paths' });
    expect(r).toMatchObject({ status: 400, body: { code: 'SIDECAR_NETNS_INVALID' } });
    await stillServes();
  });

  it('a real namespace bound outside the places where sandboxes live', async () => {
    const elsewhere = `/tmp/cnmd-t-ns-${randomBytes(3).toString('hex')}`;
    await writeFile(elsewhere, '');
    scratchFiles.push(() => rm(elsewhere, { force: true }));
    const ns = await Netns.create('cnmd-sb');
    scratchFiles.push(() => ns.remove());
    await run('mount', ['--bind', ns.path, elsewhere]);
    scratchFiles.push(() => run('umount', [elsewhere]));
    const r = await host.api('POST', '/v1/endpoints', { sandbox: elsewhere, network: 'paths' });
    expect(r).toMatchObject({ status: 400, body: { code: 'SIDECAR_NETNS_INVALID' } });
    expect(await ns.exec('ip', ['-o', 'link'])).not.toMatch(/eth0/);
  });

  it.each(['/etc/hostname', '/run/netns/../netns/x', '/proc/self/ns/net', '/dev/zero'])('%s', async (path) => {
    const r = await host.api('POST', '/v1/endpoints', { sandbox: path, network: 'paths' });
    expect(r).toMatchObject({ status: 400, body: { code: 'SIDECAR_NETNS_INVALID' } });
  });
});

/** Whether root may open PID 1's namespace here: not where PID 1 holds a capability we lack
 * (a ptrace access check; this machine's PID 1 has CAP_SYS_RESOURCE, its root not). */
const pid1Readable = (() => {
  try {
    accessSync('/proc/1/ns/net');
    return true;
  } catch {
    return false;
  }
})();

describe("the host's namespace and the daemon's are never a sandbox (SIDECAR_NETNS_HOST, 403)", () => {
  it.each([
    // Where the daemon cannot open it, it cannot attach it either: refused as no namespace.
    ['the host (PID 1)', () => '/proc/1/ns/net', pid1Readable ? 'SIDECAR_NETNS_HOST' : 'SIDECAR_NETNS_INVALID'],
    ['the daemon, by pid', () => `/proc/${host.pid}/ns/net`, 'SIDECAR_NETNS_HOST'],
    ['the daemon, by its ip-netns name', () => host.ns.name, 'SIDECAR_NETNS_HOST'],
  ])('%s', async (_, path, code) => {
    // The links by name, flags, MTU, master and address; not their operstate, which the kernel's
    // linkwatch moves on its own (a bridge goes from UNKNOWN to UP when a port's carrier comes).
    const listing = async () => (await host.ns.exec('ip', ['-o', 'link'])).replace(/ state \S+/g, '');
    const links = await listing();
    const routes = await run('ip', ['route']);
    const r = await host.api('POST', '/v1/endpoints', { sandbox: path(), network: 'paths' });
    expect(r).toMatchObject({ status: code === 'SIDECAR_NETNS_HOST' ? 403 : 400, body: { code } });
    const cli = await host.cli('attach', path(), '--network', 'paths');
    expect(cli.err).toContain(code);
    expect(await listing()).toBe(links);
    expect(await run('ip', ['route'])).toBe(routes);
  });

  it('--network host still names the daemon’s own namespace (nothing is made there)', async () => {
    await host.ok('attach', host.ns.name, '--network', 'host', '--name', 'hosty');
    await host.ok('detach', host.ns.name);
  });
});
