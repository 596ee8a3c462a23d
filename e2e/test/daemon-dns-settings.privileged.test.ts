// A container's own DNS settings through the daemon, as `docker run --dns/--dns-search/
// --dns-option/--hostname` give them, and the replies Docker's resolver makes, asked with dig
// inside sandboxes. The container's own upstream is dnsmasq in another sandbox of the network,
// which logs who asked: queries to it leave from inside the asking sandbox (its own address),
// not from the daemon's namespace (the bridge's gateway address).
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns } from '../src/netns.js';
import { StandInEngine } from '../src/stand-in-engine.js';

let host: TestHost;
let upstream: Dnsmasq;
let own: Netns; // with its own settings
let plain: Netns; // with the host's
const made: { close?: () => Promise<void>; remove?: () => Promise<void> }[] = [];

/** dnsmasq in a sandbox, answering own.test and logging each query with who asked. */
class Dnsmasq {
  log = '';
  readonly #proc: ChildProcess;

  constructor(ns: Netns, address: string) {
    const args = ['--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces'];
    args.push(`--listen-address=${address}`, '--log-queries', '--log-facility=-', '--address=/own.test/198.51.100.9');
    this.#proc = spawn('ip', ['netns', 'exec', ns.name, 'dnsmasq', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#proc.stderr?.on('data', (d) => (this.log += d));
    made.push(this);
  }

  async started(): Promise<void> {
    for (let i = 0; i < 50 && !this.log.includes('started'); i++) await new Promise((r) => setTimeout(r, 100));
  }

  /** Its lines about `name` (each query, with its source address). */
  asked(name: string): string[] {
    return this.log.split('\n').filter((l) => l.includes(` ${name} from `));
  }

  async close(): Promise<void> {
    if (this.#proc.exitCode !== null) return;
    const gone = new Promise((r) => this.#proc.once('exit', r));
    this.#proc.kill('SIGKILL');
    await gone;
  }
}

async function sandbox(...args: string[]): Promise<Netns> {
  const ns = await Netns.create('cnmd-sb');
  made.push(ns);
  await host.ok('attach', ns.name, '--network', 'dnsnet', ...args);
  return ns;
}

const dig = (ns: Netns, ...args: string[]) => ns.exec('dig', ['@127.0.0.11', '+time=3', '+tries=1', ...args]);
const short = async (ns: Netns, ...args: string[]) => (await dig(ns, '+short', ...args)).trim();

const asked = (name: string) => upstream.asked(name);

beforeAll(async () => {
  host = await TestHost.start();
  await host.ok('network', 'create', 'dnsnet', '--subnet', '10.104.0.0/24');
  upstream = new Dnsmasq(await sandbox('--name', 'upstream'), '10.104.0.2');
  await upstream.started();
  own = await sandbox(
    '--name',
    'alpha',
    '--hostname',
    'alpha-host',
    '--dns',
    '10.104.0.2',
    '--dns-search',
    'a.test',
    '--dns-search',
    'b.test',
    '--dns-option',
    'ndots:2',
    '--dns-option',
    'timeout:1',
  ); // 10.104.0.3
  plain = await sandbox('--name', 'beta'); // 10.104.0.4
});

afterAll(async () => {
  for (const m of made.reverse()) await (m.close ?? m.remove)?.call(m).catch(() => {});
  await host?.close();
});

describe('a sandbox with its own settings', () => {
  it('gets its search and options in its resolv.conf, with cnmd as its nameserver', async () => {
    const conf = await own.exec('cat', ['/etc/resolv.conf']);
    expect(conf).toMatch(/^nameserver 127\.0\.0\.11$/m);
    expect(conf).toMatch(/^search a\.test b\.test$/m);
    expect(conf).toMatch(/^options ndots:2 timeout:1$/m);
    expect(conf).not.toMatch(/cnmd\.test|ndots:0/);
  });

  it('asks its own upstream, from inside its namespace', async () => {
    expect(await short(own, 'own.test')).toBe('198.51.100.9');
    expect(asked('own.test')).toEqual([expect.stringMatching(/query\[A\] own\.test from 10\.104\.0\.3$/)]);
    // over TCP too (a truncated answer is asked again that way)
    expect(await short(own, '+tcp', 'TCP.own.test')).toBe('198.51.100.9');
    expect(asked('TCP.own.test')).toEqual([expect.stringMatching(/from 10\.104\.0\.3$/)]);
  });

  it('ndots set: a single label outside the table is NOERROR with no answer for A and AAAA, not forwarded', async () => {
    for (const type of ['A', 'AAAA']) {
      const out = await dig(own, type, 'single');
      expect(out).toMatch(/status: NOERROR/);
      expect(out).toMatch(/ANSWER: 0/);
    }
    expect(asked('single')).toEqual([]);
    // other types are forwarded; names with a dot and the table's names are not touched
    await dig(own, 'MX', 'single');
    expect(asked('single')).toEqual([expect.stringMatching(/query\[MX\] single from 10\.104\.0\.3$/)]);
    expect(await short(own, 'beta')).toBe('10.104.0.4');
    expect(await short(own, 'alpha-host')).toBe('10.104.0.3');
  });
});

it('on an internal network, its own servers are still asked (from inside it), the host’s are not', async () => {
  await host.ok('network', 'create', 'innet', '--internal', '--subnet', '10.106.0.0/24');
  const upNs = await Netns.create('cnmd-sb');
  made.push(upNs);
  await host.ok('attach', upNs.name, '--network', 'innet', '--name', 'inner-up'); // 10.106.0.2
  const up = new Dnsmasq(upNs, '10.106.0.2');
  await up.started();
  const withOwn = await Netns.create('cnmd-sb');
  made.push(withOwn);
  await host.ok('attach', withOwn.name, '--network', 'innet', '--dns', '10.106.0.2'); // 10.106.0.3
  const without = await Netns.create('cnmd-sb');
  made.push(without);
  await host.ok('attach', without.name, '--network', 'innet');
  expect(await short(withOwn, 'own.test')).toBe('198.51.100.9');
  expect(up.asked('own.test')).toEqual([expect.stringMatching(/from 10\.106\.0\.3$/)]);
  expect(await dig(without, 'own.test')).toMatch(/status: REFUSED/);
});

describe('a sandbox without', () => {
  it("gets the host's search and options, and its upstreams (never the other sandbox's)", async () => {
    const conf = await plain.exec('cat', ['/etc/resolv.conf']);
    expect(conf).toMatch(/^search cnmd\.test$/m);
    expect(conf).toMatch(/^options ndots:0$/m);
    const before = asked('own.test').length;
    expect(await short(plain, 'own.test')).not.toBe('198.51.100.9');
    expect(asked('own.test')).toHaveLength(before);
  });

  it('ndots:0 (the host’s): a single label is forwarded, and fails there like any other name', async () => {
    expect(await dig(plain, 'A', 'lonely')).toMatch(/status: SERVFAIL/);
  });
});

describe("error replies and classes, as Docker's resolver", () => {
  it('an error reply has no RA bit and no records; an answer has RA', async () => {
    const err = await dig(plain, 'nothing.test');
    expect(err).toMatch(/status: SERVFAIL/);
    expect(err).toMatch(/;; flags: qr rd; QUERY: 1, ANSWER: 0, AUTHORITY: 0,/);
    expect(await dig(plain, 'alpha')).toMatch(/;; flags: qr rd ra; QUERY: 1, ANSWER: 1,/);
  });

  it.each(['CH', 'ANY', 'NONE', 'CLASS0'])('A alpha in class %s is answered from the table', async (cls) => {
    const out = await dig(plain, '-c', cls, 'A', 'alpha');
    expect(out).toMatch(/status: NOERROR/);
    expect(out).toMatch(/^alpha\.\s+600\s+IN\s+A\s+10\.104\.0\.3$/m);
  });

  it('a UDP query over 512 bytes without EDNS is FORMERR; with EDNS it is answered', async () => {
    const script = fileURLToPath(new URL('../scripts/big-query.mjs', import.meta.url));
    const rcodes = await plain.exec(process.execPath, [script, '127.0.0.11', 'alpha']);
    expect(rcodes.trim()).toBe('no-edns 600 FORMERR 0\nedns 600 NOERROR 1');
  });
});

it('the Docker source passes a container’s HostConfig Dns and DnsOptions', async () => {
  const engine = await StandInEngine.start();
  made.push(engine);
  const docked = await TestHost.start({ dockerSocket: engine.socket });
  made.push(docked);
  await docked.ok('network', 'create', 'dnsnet', '--subnet', '10.105.0.0/24');
  const upNs = await Netns.create('cnmd-sb');
  made.push(upNs);
  await docked.ok('attach', upNs.name, '--network', 'dnsnet', '--name', 'up'); // 10.105.0.2
  const up = new Dnsmasq(upNs, '10.105.0.2');
  await up.started();
  const ns = await Netns.create('cnmd-sb');
  made.push(ns);
  const id = await engine.run({
    name: 'gamma',
    labels: { 'cnmd.networks': 'dnsnet' },
    sandbox: ns.path,
    dns: { servers: ['10.105.0.2'], search: ['g.test'], options: ['ndots:3'] },
  });
  for (let i = 0; i < 100 && !(await readFile(engine.resolvConf(id), 'utf8')).includes('127.0.0.11'); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(await short(ns, 'own.test')).toBe('198.51.100.9');
  expect(up.asked('own.test')).toEqual([expect.stringMatching(/from 10\.105\.0\.3$/)]);
  expect(await dig(ns, 'A', 'single')).toMatch(/status: NOERROR/);
  expect(up.asked('single')).toEqual([]);
});
