import { afterEach, describe, expect, it } from 'vitest';
import { DnsError, DnsServer, DURATION_BUCKETS } from '../src/index.js';
import { decodeExact, type Exchange, encode, encodeQuery } from '../src/internal.js';
import { FakeTransport } from './fake-transport.js';

// The counters behind the sidecar's DNS metrics (stats.ts): what a snapshot says after queries.

const servers: DnsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** An upstream that answers `up.test` with an address, times out for `slow.test`, NXDOMAIN otherwise. */
const exchange: Exchange = async (_u, query) => {
  const q = decodeExact(query);
  const name = q.questions![0]!.name;
  if (name === 'slow.test') throw new DnsError('DNS_UPSTREAM_TIMEOUT', 'no answer');
  const ok = name === 'up.test';
  return encode({
    type: 'response',
    id: q.id,
    flags: ok ? 0 : 3, // RCODE NXDOMAIN
    questions: q.questions,
    answers: ok ? [{ type: 'A', name, ttl: 60, data: '192.0.2.8' }] : [],
  });
};

async function serve(metrics: boolean) {
  const server = new DnsServer({ upstreams: ['10.9.0.1'], exchange, metrics });
  servers.push(server);
  server.table.upsertEndpoint({ network: 'front', id: 'c1', name: 'web', addresses: ['10.0.0.2'] });
  const a = new FakeTransport();
  const b = new FakeTransport();
  server.addSandbox('a', { udp: a, networks: ['front'] });
  server.addSandbox('b', { udp: b, networks: ['front', 'back'], forward: false });
  await server.start();
  const ask = async (t: FakeTransport, name: string, type = 'A') =>
    decodeExact(await t.query(encodeQuery(name, type))).rcode;
  return { server, a, b, ask };
}

describe('DnsServer.stats()', () => {
  it('counts requests by the networks of the sandbox, type and rcode, each timed', async () => {
    const { server, a, b, ask } = await serve(true);
    for (let i = 0; i < 5; i++) expect(await ask(a, 'web')).toBe('NOERROR');
    expect(await ask(a, 'web', 'AAAA')).toBe('NOERROR');
    expect(await ask(a, 'web', 'NAPTR')).toBe('NOERROR'); // a type without a name of its own: other
    expect(await ask(b, 'nothing.here')).toBe('REFUSED');
    const s = server.stats();
    const front = s.views.find((v) => v.networks === 'front')!;
    expect(front.requests).toEqual(
      expect.arrayContaining([
        { type: 'A', rcode: 'NOERROR', count: 5 },
        { type: 'AAAA', rcode: 'NOERROR', count: 1 },
        { type: 'other', rcode: 'NOERROR', count: 1 },
      ]),
    );
    expect(front.duration.count).toBe(7);
    expect(front.duration.counts.reduce((x, y) => x + y, 0)).toBe(7);
    expect(front.duration.bounds[0]).toBe(0.000025);
    expect(front.duration.sum).toBeGreaterThan(0);
    expect(s.views.find((v) => v.networks === 'front,back')!.requests).toEqual([
      { type: 'A', rcode: 'REFUSED', count: 1 },
    ]);
  });

  it('counts cache hits and misses, and forwards per upstream with their rcode, failures and duration', async () => {
    const { server, a, ask } = await serve(true);
    expect(await ask(a, 'up.test')).toBe('NOERROR'); // miss, forwarded
    expect(await ask(a, 'up.test')).toBe('NOERROR'); // hit
    expect(await ask(a, 'gone.test')).toBe('NXDOMAIN');
    expect(await ask(a, 'slow.test')).toBe('SERVFAIL'); // the one upstream timed out
    const s = server.stats();
    expect(s.cache).toMatchObject({ hits: 1, misses: 3 });
    const f = s.forwards.find((x) => x.upstream === '10.9.0.1:53')!;
    expect(f).toMatchObject({ requests: 3, timeouts: 1, errors: 0 });
    expect(f.responses).toEqual([
      { rcode: 'NOERROR', count: 1 },
      { rcode: 'NXDOMAIN', count: 1 },
    ]);
    expect(f.durations.map((d) => [d.outcome, d.histogram.count]).sort()).toEqual([
      ['NOERROR', 1],
      ['NXDOMAIN', 1],
      ['timeout', 1],
    ]);
    expect(s.upstreams).toEqual([{ upstream: '10.9.0.1:53', up: true }]);
    const front = s.views.find((v) => v.networks === 'front')!;
    expect(front.requests).toEqual(
      expect.arrayContaining([
        { type: 'A', rcode: 'NOERROR', count: 2 },
        { type: 'A', rcode: 'NXDOMAIN', count: 1 },
        { type: 'A', rcode: 'SERVFAIL', count: 1 },
      ]),
    );
  });

  it('marks an upstream down while it is skipped', async () => {
    const { server, a, ask } = await serve(true);
    for (let i = 0; i < 3; i++) expect(await ask(a, 'slow.test')).toBe('SERVFAIL');
    expect(server.stats().upstreams).toEqual([{ upstream: '10.9.0.1:53', up: false }]);
  });

  it('counts malformed packets', async () => {
    const { server, a } = await serve(true);
    expect(a.ask(Buffer.from([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toBeDefined(); // no question: FORMERR
    expect(server.stats().malformed).toBe(1);
  });

  it('keeps no request counts and times nothing with metrics off (the default)', async () => {
    const { server, a, ask } = await serve(false);
    expect(await ask(a, 'web')).toBe('NOERROR');
    expect(await ask(a, 'up.test')).toBe('NOERROR');
    const s = server.stats();
    expect(s.views).toEqual([]);
    expect(s.forwards).toEqual([]);
  });

  it('buckets from 25 µs to 10 s', () => {
    expect(DURATION_BUCKETS).toHaveLength(18);
    expect(DURATION_BUCKETS.slice(0, 3)).toEqual([0.000025, 0.00005, 0.0001]);
    expect(DURATION_BUCKETS.at(-1)).toBe(10);
  });

  it('refuses a metrics option that is not a boolean', () => {
    expect(() => new DnsServer({ metrics: 'yes' as never })).toThrow(/metrics must be a boolean/);
  });
});
