// Docker's network modes: none (only lo), host (the host's namespace, nothing made) and
// container:<name> (another container's namespace, its interfaces and, by name, its addresses).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns } from '../src/netns.js';

let host: TestHost;
const made: Netns[] = [];
const sandbox = async () => {
  const ns = await Netns.create('cnmd-sb');
  made.push(ns);
  return ns;
};

beforeAll(async () => {
  host = await TestHost.start();
  await host.ok('network', 'create', 'm', '--subnet', '10.101.0.0/24');
});
afterAll(async () => {
  for (const ns of made) await ns.remove().catch(() => {});
  await host?.close();
});

it('none: only lo, up, and nothing else may join the sandbox', async () => {
  const ns = await sandbox();
  await ns.exec('ip', ['link', 'set', 'lo', 'down']);
  await host.ok('attach', ns.name, '--network', 'none', '--name', 'loner');
  expect((await ns.exec('ip', ['-o', 'link'])).trim().split('\n')).toHaveLength(1);
  expect(await ns.exec('ip', ['-o', 'link', 'show', 'lo'])).toContain('UP');
  expect((await host.cli('attach', ns.name, '--network', 'm')).err).toContain('SIDECAR_ENDPOINT_EXISTS');
  const [ep] = await host.json<{ network: string }[]>('inspect', 'loner');
  expect(ep!.network).toBe('none');
  await host.ok('detach', ns.name);
});

it("host: accepted for the host's own namespace only, nothing made", async () => {
  const hostNs = `/run/netns/${host.ns.name}`;
  const before = await host.ns.exec('ip', ['-o', 'link']);
  await host.ok('attach', hostNs, '--network', 'host', '--name', 'hosty');
  expect(await host.ns.exec('ip', ['-o', 'link'])).toBe(before);
  const other = await sandbox();
  expect((await host.cli('attach', other.name, '--network', 'host')).err).toContain('SIDECAR_INVALID_ARGUMENT');
  await host.ok('detach', hostNs);
});

it('container:<name>: shares the interfaces, and its name answers with the owner’s address', async () => {
  const ns = await sandbox();
  await host.ok('attach', ns.name, '--network', 'm', '--name', 'owner');
  await host.ok('attach', ns.path, '--network', 'container:owner', '--name', 'sidekick');
  const peer = await sandbox();
  await host.ok('attach', peer.name, '--network', 'm', '--name', 'peer');
  const dig = (name: string) => peer.exec('dig', ['@127.0.0.11', '+short', name]).then((s) => s.trim());
  expect(await dig('sidekick')).toBe('10.101.0.2');
  expect(await dig('owner')).toBe('10.101.0.2');
  // Not the owner's namespace: refused.
  expect((await host.cli('attach', peer.name, '--network', 'container:owner', '--name', 'x')).err).toContain(
    'SIDECAR_INVALID_ARGUMENT',
  );
  // Detaching the namespace takes both.
  await host.ok('detach', ns.name);
  expect(await dig('sidekick')).toBe('');
  expect((await host.json<{ name: string }[]>('ps')).map((e) => e.name)).toEqual(['peer']);
});
