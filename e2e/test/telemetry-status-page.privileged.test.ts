// The status page in a real browser: headless Chromium (Debian's), run inside the simulated host,
// loads / of the daemon's --metrics-addr with two networks, five endpoints and a service with an
// unhealthy backend; the test reads the DOM the page's script rendered (--dump-dom) and saves a
// screenshot. A container the engine names `<img src=x onerror=alert(1)>` is shown as text: cnmd
// refuses the name (it is no DNS name), and the page's last errors say so, the name in them.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns } from '../src/netns.js';
import { NsServer } from '../src/servers.js';
import { StandInEngine } from '../src/stand-in-engine.js';

const exec = promisify(execFile);
const CHROMIUM = process.env.CNMD_CHROMIUM ?? '/usr/bin/chromium';
const PORT = 9464;
const EVIL = '<img src=x onerror=alert(1)>';
/** Where the screenshot goes: the CI's report folder, else .vitest/ (both outside git). */
const OUT = join(
  process.env.CNMD_REPORT_DIR ?? fileURLToPath(new URL('../../.vitest', import.meta.url)),
  'telemetry-status-page',
);

const made: { close?: () => Promise<void>; remove?: () => Promise<void>; stop?: () => Promise<void> }[] = [];
let host: TestHost;
let profile: string;

async function until(what: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Headless Chromium in the host's namespace (the listener is there), with a profile of its own. */
function chromium(...args: string[]): Promise<string> {
  return exec(
    'ip',
    [
      'netns',
      'exec',
      host.ns.name,
      CHROMIUM,
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      `--user-data-dir=${profile}`,
      ...args,
    ],
    { maxBuffer: 16 * 1024 * 1024, timeout: 60_000 },
  ).then((r) => r.stdout);
}

beforeAll(async () => {
  profile = await mkdtemp(join(tmpdir(), 'cnmd-chromium-'));
  const engine = await StandInEngine.start();
  made.push(engine);
  host = await TestHost.start({
    dockerSocket: engine.socket,
    dockerScope: 'status-page',
    args: ['--metrics-addr', `127.0.0.1:${PORT}`],
  });
  made.push(host);
  const sandbox = async () => {
    const ns = await Netns.create('cnmd-sb');
    made.push(ns);
    return ns;
  };
  await host.ok('network', 'create', 'front', '--subnet', '10.120.0.0/24');
  await host.ok('network', 'create', 'back', '--subnet', '10.121.0.0/24');
  await host.ok(
    'service',
    'create',
    'api',
    '--network',
    'front',
    '--port',
    '80/tcp',
    '--health',
    'http:81/healthz,interval=200ms,timeout=100ms,rise=1,fall=1',
  );
  // web1 answers its health check, web2 does not: unhealthy.
  const web1 = await sandbox();
  made.push(await NsServer.http(web1, 81, 'ok'));
  await host.ok('attach', web1.name, '--network', 'front', '--name', 'web1', '--service', 'api');
  const web2 = await sandbox();
  await host.ok('attach', web2.name, '--network', 'front', '--name', 'web2', '--service', 'api');
  await host.ok('attach', (await sandbox()).name, '--network', 'front', '--name', 'client', '--alias', 'cli');
  await host.ok('attach', (await sandbox()).name, '--network', 'back', '--name', 'db');
  await host.ok('attach', (await sandbox()).name, '--network', 'back', '--name', 'cache');
  // A container of the engine, whose names cnmd does not choose.
  await engine.run({
    name: EVIL,
    labels: { 'cnmd.networks': 'back', 'cnmd.scope': 'status-page' },
    sandbox: (await sandbox()).path,
  });
  await until(async () => host.log.includes('onerror'));
  type Backend = { name: string; health?: string };
  await until(async () =>
    (await host.json<Backend[]>('service', 'backends', 'api')).some(
      (b) => b.name === 'web2' && b.health === 'unhealthy',
    ),
  );
}, 120_000);

afterAll(async () => {
  for (const m of made.splice(0).reverse()) await (m.stop ?? m.close ?? m.remove)?.call(m).catch(() => {});
  await rm(profile, { recursive: true, force: true });
});

/** The rows of a table of the dumped DOM, each a list of its cells' text (entities decoded). */
function rows(dom: string, id: string): { cls: string; cells: string[] }[] {
  const table = new RegExp(`<table id="${id}">([\\s\\S]*?)</table>`).exec(dom)?.[1] ?? '';
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(table)?.[1] ?? '';
  const decode = (s: string) =>
    s
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&');
  return [...body.matchAll(/<tr(?: class="([^"]*)")?>([\s\S]*?)<\/tr>/g)].map((m) => ({
    cls: m[1] ?? '',
    cells: [...m[2]!.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((c) => decode(c[1]!)),
  }));
}

it('shows the networks, endpoints, the service and its unhealthy backend, rendered by its script', {
  timeout: 90_000,
}, async () => {
  const url = `http://127.0.0.1:${PORT}/`;
  // The virtual time budget lets the page's refresh (a fetch of status.json) run before the dump.
  const dom = await chromium('--virtual-time-budget=5000', '--dump-dom', url);
  expect(dom).toContain('data-rendered="script"');

  const networks = rows(dom, 'networks');
  expect(networks.map((r) => r.cells[0]).sort()).toEqual(['back', 'front']);
  const front = networks.find((r) => r.cells[0] === 'front')!;
  expect(front.cells.slice(1, 4)).toEqual(['bridge', 'local', '10.120.0.0/24']);
  expect(front.cells[6]).toMatch(/^\d+ \/ 253 \(/); // pool use: the VIP, three endpoints, the LB's

  const endpoints = rows(dom, 'endpoints');
  expect(endpoints).toHaveLength(5);
  expect(endpoints.map((r) => r.cells[0]).sort()).toEqual(['cache', 'client', 'db', 'web1', 'web2']);
  expect(endpoints.find((r) => r.cells[0] === 'client')!.cells[5]).toBe('cli');
  expect(endpoints.every((r) => r.cells[6] === 'ready' && /^10\.12[01]\.0\.\d+$/.test(r.cells[4]!))).toBe(true);

  const services = rows(dom, 'services');
  expect(services).toHaveLength(1);
  expect(services[0]!.cells.slice(0, 3)).toEqual(['api', 'front', 'vip']);
  expect(services[0]!.cells[6]).toMatch(/^(nftables|ipvs)$/);
  expect(services[0]!.cells[7]).toBe('http:81/healthz');

  const backends = rows(dom, 'backends');
  expect(backends.map((r) => [r.cells[2], r.cells[5], r.cls]).sort()).toEqual([
    ['web1', 'healthy', 'healthy'],
    ['web2', 'unhealthy', 'unhealthy'],
  ]);

  // The engine's container was refused for its name, which the last errors show as text: no
  // element came of it.
  const errors = rows(dom, 'errors');
  const refused = errors.find((r) => r.cells[3]!.includes(`attach ${EVIL} to back`))!;
  expect(refused.cells.slice(1, 3)).toEqual(['error', 'DNS_INVALID_NAME']);
  expect(dom).toContain('&lt;img src=x onerror=alert(1)&gt;');
  expect(dom).not.toMatch(/<img/i);

  await mkdir(OUT, { recursive: true });
  const shot = join(OUT, 'status-page.png');
  await chromium('--virtual-time-budget=3000', '--window-size=1400,1800', `--screenshot=${shot}`, url);
  expect((await stat(shot)).size).toBeGreaterThan(10_000);
});

it('is read-only: a POST changes nothing', async () => {
  const before = await host.json<unknown[]>('ps');
  const out = await host.ns.exec('curl', [
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-X',
    'POST',
    `http://127.0.0.1:${PORT}/`,
  ]);
  expect(out).toBe('405');
  expect(await host.json<unknown[]>('ps')).toEqual(before);
});
