import { afterEach, describe, expect, it } from 'vitest';
import { DnsServer, type DnsServerOptions, type SandboxConfig } from '../src/index.js';
import type { Message } from '../src/internal.js';
import { addLoopbackSandbox, Cleanup, dig, digShort, digStatus, startDnsmasq, testUpstream } from './net-helpers.js';

// Forwarding to upstreams the tests start on loopback: Debian's dnsmasq with a hosts file, or a
// small upstream written here. Only the tests' own names (*.test) are ever asked.

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function serve(upstreams: string[], opts: Partial<DnsServerOptions> = {}, config: SandboxConfig = {}) {
  const server = new DnsServer({ upstreams, upstreamTimeout: 500, ...opts });
  cleanup.add(() => server.close());
  server.table.upsertEndpoint({ network: 'front', id: 'c1', name: 'web', addresses: ['10.0.0.2'] });
  const port = await addLoopbackSandbox(server, 'sb', { networks: ['front'], ...config });
  await server.start();
  return { server, port };
}

const a = (name: string, data: string, ttl = 300) => ({ type: 'A' as const, name, ttl, data });
const soa = { type: 'SOA' as const, name: 'test', ttl: 300, data: { mname: 'ns.test', rname: 'h.test', minimum: 60 } };

describe('forwarding names the table does not hold', () => {
  it('forwards to dnsmasq over UDP and TCP; table names never leave', async () => {
    const up = await startDnsmasq(cleanup, '192.0.2.10 up.test\n');
    const { port } = await serve([up]);
    expect(await digShort(port, 'up.test')).toEqual(['192.0.2.10']);
    expect(await digShort(port, '+tcp', 'UP.test')).toEqual(['192.0.2.10']);
    expect(await digShort(port, 'web')).toEqual(['10.0.0.2']);
  });

  it('forwards a name outside the table in the class asked, and caches it apart from IN', async () => {
    const up = await testUpstream(cleanup, (q) => ({
      type: 'response',
      answers: [{ type: 'TXT', class: q.questions![0]!.class, name: q.questions![0]!.name, ttl: 60, data: 'x' }],
    }));
    const { port } = await serve([up.address]);
    expect(await dig(port, '+noall', '+answer', '-c', 'CH', '-t', 'TXT', 'version.test')).toMatch(/\sCH\s+TXT\s+"x"$/m);
    expect(await dig(port, '+noall', '+answer', '-t', 'TXT', 'version.test')).toMatch(/\sIN\s+TXT\s+"x"$/m);
    expect(up.queries.map((q) => q.questions![0]!.class)).toEqual(['CH', 'IN']);
  });

  it('retries a truncated upstream answer over TCP, and truncates it for a small client', async () => {
    const hosts = Array.from({ length: 60 }, (_, i) => `192.0.2.${i + 1} many.test`).join('\n');
    const up = await startDnsmasq(cleanup, `${hosts}\n`);
    const { port } = await serve([up]);
    expect(await digShort(port, '+bufsize=4096', 'many.test')).toHaveLength(60);
    expect(await dig(port, '+noedns', '+ignore', 'many.test')).toMatch(/flags: qr[a-z ]* tc[a-z ]*;/);
    expect(await digShort(port, '+noedns', 'many.test')).toHaveLength(60); // dig retries over TCP
  });

  it('fails over to the next upstream on timeout, SERVFAIL and REFUSED', async () => {
    const silent = await testUpstream(cleanup, () => undefined);
    const failing = await testUpstream(cleanup, () => ({ type: 'response', flags: 2 }) as Message);
    const refusing = await testUpstream(cleanup, () => ({ type: 'response', flags: 5 }) as Message);
    const good = await testUpstream(cleanup, (q) => ({
      type: 'response',
      answers: [a(q.questions![0]!.name, '192.0.2.7')],
    }));
    const { port } = await serve([silent.address, failing.address, refusing.address, good.address]);
    expect(await digShort(port, 'x.test')).toEqual(['192.0.2.7']);
    expect([silent, failing, refusing, good].map((u) => u.queries.length)).toEqual([1, 1, 1, 1]);
  });

  it('answers SERVFAIL when no upstream answers', async () => {
    const silent = await testUpstream(cleanup, () => undefined);
    const { port } = await serve([silent.address], { upstreamTimeout: 200 });
    expect(await digStatus(port, 'x.test')).toBe('SERVFAIL');
  });

  it("answers an upstream's SERVFAIL and REFUSED with a SERVFAIL of its own: no RA, no records (libnetwork)", async () => {
    const failing = await testUpstream(
      cleanup,
      () => ({ type: 'response', flags: 0x0080 | 2, authorities: [soa] }) as Message,
    );
    const refusing = await testUpstream(
      cleanup,
      () => ({ type: 'response', flags: 0x0080 | 5, authorities: [soa] }) as Message,
    );
    const { port } = await serve([failing.address, refusing.address]);
    const out = await dig(port, 'x.test');
    expect(out).toMatch(/status: SERVFAIL,/);
    expect(out).toMatch(/flags: qr rd; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 1$/m);
    expect([failing.queries.length, refusing.queries.length]).toEqual([1, 1]);
  });

  it('refuses forwarded queries past maxInflight (libnetwork)', async () => {
    const silent = await testUpstream(cleanup, () => undefined);
    const { port } = await serve([silent.address], { maxInflight: 2, upstreamTimeout: 2000 });
    const hung = [dig(port, '+timeout=4', 'a.test'), dig(port, '+timeout=4', 'b.test')];
    while (silent.queries.length < 2) await new Promise((r) => setTimeout(r, 20));
    expect(await digStatus(port, 'c.test')).toBe('REFUSED');
    await Promise.all(hung);
  });

  it('caches answers, and negative answers for their SOA time (RFC 2308)', async () => {
    const up = await testUpstream(cleanup, (q) =>
      q.questions![0]!.name.startsWith('nx')
        ? ({ type: 'response', flags: 3, authorities: [soa] } as Message)
        : { type: 'response', answers: [a(q.questions![0]!.name, '192.0.2.8')] },
    );
    const { port } = await serve([up.address]);
    expect(await digShort(port, 'c.test')).toEqual(['192.0.2.8']);
    expect(await dig(port, '+noall', '+answer', 'C.TEST')).toMatch(/^C\.TEST\.\s+\d+\s+IN\s+A\s+192\.0\.2\.8$/m);
    expect(await digStatus(port, 'nx.test')).toBe('NXDOMAIN');
    expect(await digStatus(port, 'nx.test')).toBe('NXDOMAIN');
    expect(up.queries.map((q) => q.questions![0]!.name.toLowerCase())).toEqual(['c.test', 'nx.test']);
  });

  it('does not cache with cacheSize 0', async () => {
    const up = await testUpstream(cleanup, (q) => ({
      type: 'response',
      answers: [a(q.questions![0]!.name, '192.0.2.8')],
    }));
    const { port } = await serve([up.address], { cacheSize: 0 });
    await digShort(port, 'c.test');
    await digShort(port, 'c.test');
    expect(up.queries).toHaveLength(2);
  });

  it('does not forward for a sandbox that may not (internal networks): REFUSED', async () => {
    const up = await testUpstream(cleanup, (q) => ({
      type: 'response',
      answers: [a(q.questions![0]!.name, '192.0.2.8')],
    }));
    const { port } = await serve([up.address], {}, { forward: false });
    expect(await digStatus(port, 'c.test')).toBe('REFUSED');
    expect(await digShort(port, 'web')).toEqual(['10.0.0.2']);
    expect(up.queries).toHaveLength(0);
  });

  it('answers A and AAAA of a single label outside the table empty when ndots is set, and forwards the rest', async () => {
    const up = await testUpstream(cleanup, (q) => ({
      type: 'response',
      answers: [a(q.questions![0]!.name, '192.0.2.8')],
    }));
    const { server, port } = await serve([up.address], {}, { ndots: 2 });
    for (const type of ['A', 'AAAA']) {
      const out = await dig(port, 'single', type);
      expect(out).toMatch(/status: NOERROR,/);
      expect(out).toMatch(/flags: qr rd ra; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 1$/m);
    }
    expect(await digShort(port, 'web')).toEqual(['10.0.0.2']); // the table's names as ever
    expect(up.queries).toHaveLength(0);
    await dig(port, 'single', 'TXT');
    expect(await digShort(port, 'two.test')).toEqual(['192.0.2.8']);
    server.configureSandbox('sb', { ndots: undefined });
    expect(await digShort(port, 'single')).toEqual(['192.0.2.8']);
    expect(up.queries.map((q) => `${q.questions![0]!.name} ${q.questions![0]!.type}`)).toEqual([
      'single TXT',
      'two.test A',
      'single A',
    ]);
  });

  it('forwards the asker EDNS size and DO bit, and answers with our OPT', async () => {
    const up = await testUpstream(cleanup, (q) => ({
      type: 'response',
      answers: [a(q.questions![0]!.name, '192.0.2.8')],
    }));
    const { port } = await serve([up.address]);
    const out = await dig(port, '+bufsize=3000', '+dnssec', 'e.test');
    expect(out).toMatch(/EDNS: version: 0, flags: do; udp: 1232/);
    expect(up.queries[0]!.additionals?.[0]).toMatchObject({ type: 'OPT', udpPayloadSize: 3000, flag_do: true });
  });
});
