// The daemon's edges: a sandbox that dies while it runs, forwarding to the host's upstreams,
// inputs that are not what they claim, and its config file.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns } from '../src/netns.js';

let host: TestHost;
let upstream: ReturnType<typeof spawn> | undefined;
const made: Netns[] = [];

beforeAll(async () => {
  // An upstream of the test's own, on the host namespace's loopback: it knows one name.
  host = await TestHost.start({ upstreams: ['127.0.0.1:5399'] });
  upstream = spawn(
    'ip',
    [
      'netns',
      'exec',
      host.ns.name,
      'dnsmasq',
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--port=5399',
      '--address=/upstream.cnmd.test/198.51.100.7',
    ],
    { stdio: 'ignore' },
  );
  await new Promise((r) => setTimeout(r, 300));
  await host.ok('network', 'create', 'life', '--subnet', '10.102.0.0/24');
});

afterAll(async () => {
  if (upstream && upstream.exitCode === null) {
    const gone = new Promise((r) => upstream!.once('exit', r));
    upstream.kill('SIGKILL');
    await gone;
  }
  for (const ns of made) await ns.remove().catch(() => {});
  await host?.close();
});

async function sandbox(name: string): Promise<Netns> {
  const ns = await Netns.create('cnmd-sb');
  made.push(ns);
  await host.ok('attach', ns.name, '--network', 'life', '--name', name);
  return ns;
}

it('forwards names it does not hold to the host’s upstreams, from the host namespace', async () => {
  const ns = await sandbox('fwd');
  const out = await ns.exec('dig', ['@127.0.0.11', '+short', '+time=3', '+tries=1', 'upstream.cnmd.test']);
  expect(out.trim()).toBe('198.51.100.7');
});

it('notices a sandbox that died while it runs: its endpoint, name and address go', async () => {
  const doomed = await sandbox('doomed');
  const watcher = await sandbox('watcher');
  expect((await watcher.exec('dig', ['@127.0.0.11', '+short', 'doomed'])).trim()).toMatch(/^10\.102\.0\./);
  await doomed.remove();
  let names: string[] = [];
  for (let i = 0; i < 50; i++) {
    names = (await host.json<{ name: string }[]>('ps')).map((e) => e.name);
    if (!names.includes('doomed')) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(names).not.toContain('doomed');
  expect((await watcher.exec('dig', ['@127.0.0.11', '+short', 'doomed'])).trim()).toBe('');
  expect(await host.ns.exec('ip', ['-o', 'link'])).toMatch(/vcn/); // the others' veths stay
});

it.each([
  ['/proc/self/ns/mnt', 'SIDECAR_NETNS_INVALID'],
  ['/etc/hostname', 'SIDECAR_NETNS_INVALID'],
  ['no-such-netns', 'SIDECAR_NETNS_INVALID'],
  ['bad name!', 'SIDECAR_NETNS_INVALID'],
])('refuses to attach %s (%s) and changes nothing', async (path, code) => {
  const before = await host.json<unknown[]>('ps');
  const r = await host.cli('attach', path, '--network', 'life');
  expect(r.code).toBe(1);
  expect(r.err).toContain(code);
  expect(await host.json<unknown[]>('ps')).toEqual(before);
});

it('refuses a malformed API body with a code, over the socket', async () => {
  const out = await new Promise<string>((resolve) => {
    const p = spawn('curl', [
      '-s',
      '--unix-socket',
      host.socket,
      '-X',
      'POST',
      '-d',
      '{"name": 5',
      'http://cnmd/v1/networks',
    ]);
    let s = '';
    p.stdout.on('data', (d) => (s += d));
    p.on('exit', () => resolve(s));
  });
  expect(JSON.parse(out)).toMatchObject({ code: 'API_BAD_REQUEST' });
});

it('refuses a bad config file with a code', async () => {
  const file = join(host.dir, 'bad.json');
  await writeFile(file, JSON.stringify({ socket: 5 }));
  const { execFile } = await import('node:child_process');
  const cnmd = new URL('../../sidecar/bin/cnmd.js', import.meta.url).pathname;
  const err = await new Promise<string>((resolve) =>
    execFile(process.execPath, [cnmd, 'daemon', '--config', file], (_e, _o, stderr) => resolve(stderr)),
  );
  expect(err).toContain('SIDECAR_CONFIG_INVALID');
});
