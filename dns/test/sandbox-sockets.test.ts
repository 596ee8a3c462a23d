import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { DnsError, DnsServer, type UpstreamSockets, upstreamChannel } from '../src/index.js';
import { decodeExact, type Exchange, encode, encodeQuery, parseUpstream, socketExchange } from '../src/internal.js';
import { FakeTransport } from './fake-transport.js';
import { codeOf } from './helpers.js';

// A sandbox's own way to its upstreams (SandboxSpec.sockets): the exchange is handed its openers,
// and what goes that way is cached and judged apart from the server's own sockets.

const servers: DnsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Openers that are never called in these tests: the recording exchange stands in for sockets. */
const opaque = (): UpstreamSockets => ({
  udp: () => {
    throw new Error('not in this test');
  },
  tcp: () => {
    throw new Error('not in this test');
  },
});

interface Call {
  upstream: string;
  name: string;
  sockets: UpstreamSockets | undefined;
}

/** A server whose exchange records each attempt; `fail` decides which attempts time out. */
async function serve(fail: (c: Call) => boolean = () => false) {
  const calls: Call[] = [];
  const exchange: Exchange = async (u, query, _tcp, _timeout, sockets) => {
    const q = decodeExact(query);
    const call = { upstream: u.host, name: q.questions![0]!.name, sockets };
    calls.push(call);
    if (fail(call)) throw new DnsError('DNS_UPSTREAM_TIMEOUT', 'no answer');
    return encode({
      type: 'response',
      id: q.id,
      questions: q.questions,
      answers: [{ type: 'A', name: call.name, ttl: 60, data: '192.0.2.8' }],
    });
  };
  const server = new DnsServer({ upstreams: ['10.9.0.1', '10.9.0.2'], exchange });
  servers.push(server);
  const own = opaque();
  const inside = new FakeTransport();
  const outside = new FakeTransport();
  server.addSandbox('inside', { udp: inside, networks: ['front'], sockets: own });
  server.addSandbox('outside', { udp: outside, networks: ['front'] });
  await server.start();
  const ask = async (t: FakeTransport, name: string) => decodeExact(await t.query(encodeQuery(name, 'A'))).rcode;
  return { server, calls, own, inside, outside, ask };
}

describe('a sandbox with its own upstream sockets', () => {
  it("hands its openers to the exchange; other sandboxes' queries use the server's sockets", async () => {
    const { server, calls, own, inside, outside, ask } = await serve();
    await ask(inside, 'a.test');
    await ask(outside, 'b.test');
    expect(calls.map((c) => [c.name, c.sockets])).toEqual([
      ['a.test', own],
      ['b.test', undefined],
    ]);
    const other = opaque();
    server.configureSandbox('inside', { sockets: other });
    await ask(inside, 'c.test');
    server.configureSandbox('inside', { upstreams: ['10.9.0.3'] }); // sockets stay
    await ask(inside, 'd.test');
    server.configureSandbox('inside', { sockets: undefined });
    await ask(inside, 'e.test');
    expect(calls.slice(2).map((c) => [c.name, c.upstream, c.sockets])).toEqual([
      ['c.test', '10.9.0.1', other],
      ['d.test', '10.9.0.3', other],
      ['e.test', '10.9.0.3', undefined],
    ]);
  });

  it('does not share cached answers with sandboxes that forward another way', async () => {
    const { calls, inside, outside, ask } = await serve();
    await ask(inside, 'c.test');
    await ask(outside, 'c.test');
    await ask(inside, 'C.TEST');
    await ask(outside, 'c.test');
    expect(calls.map((c) => c.sockets === undefined)).toEqual([false, true]);
  });

  it("keeps its upstreams' health apart: failures from inside skip an upstream for it alone", async () => {
    const down: object[] = [];
    const onEvent = (e: unknown) => down.push(e as object);
    upstreamChannel.subscribe(onEvent);
    try {
      const { server, calls, inside, outside, ask } = await serve(
        (c) => c.sockets !== undefined && c.upstream === '10.9.0.1',
      );
      for (let i = 0; i < 3; i++) await ask(inside, `n${i}.test`); // three timeouts in a row: skipped
      calls.length = 0;
      await ask(inside, 'x.test');
      await ask(outside, 'y.test');
      expect(calls.map((c) => `${c.name}@${c.upstream}`)).toEqual(['x.test@10.9.0.2', 'y.test@10.9.0.1']);
      expect(down).toEqual([{ upstream: '10.9.0.1:53', state: 'down', sandbox: 'inside', until: expect.any(Number) }]);
      // A sandbox of the same id added again starts afresh.
      await server.removeSandbox('inside');
      const again = new FakeTransport();
      server.addSandbox('inside', { udp: again, networks: ['front'], sockets: opaque() });
      calls.length = 0;
      await ask(again, 'z.test');
      expect(calls.map((c) => c.upstream)).toEqual(['10.9.0.1', '10.9.0.2']);
    } finally {
      upstreamChannel.unsubscribe(onEvent);
    }
  });

  it.each([{}, { udp: () => undefined }, 'sockets', null])('refuses sockets %j and changes nothing', async (bad) => {
    const { server, calls, inside, ask } = await serve();
    expect(await codeOf(() => server.configureSandbox('inside', { sockets: bad as never, forward: false }))).toBe(
      'DNS_INVALID_OPTION',
    );
    expect(await codeOf(() => server.addSandbox('x', { networks: [], sockets: bad as never }))).toBe(
      'DNS_INVALID_OPTION',
    );
    await ask(inside, 'a.test');
    expect(calls).toHaveLength(1); // still forwarding, through its own sockets
    expect(calls[0]!.sockets).toBeDefined();
  });
});

describe('the socket exchange with openers', () => {
  const up = parseUpstream('127.0.0.1:9');
  const query = encodeQuery('a.test', 'A');

  it('fails the attempt when an opener throws (the sandbox is gone), and says so', async () => {
    const err = await socketExchange(up, query, false, 1000, opaque()).catch((e) => e);
    expect(err).toMatchObject({ code: 'DNS_UPSTREAM_ERROR', cause: { message: 'not in this test' } });
    expect(await socketExchange(up, query, true, 1000, opaque()).catch((e) => e.code)).toBe('DNS_UPSTREAM_ERROR');
  });

  it("refuses an unbound UDP socket, which the connect would bind in the server's namespace, and closes it", async () => {
    const made: dgram.Socket[] = [];
    const calls: number[] = [];
    const sockets: UpstreamSockets = {
      udp(family) {
        calls.push(family);
        const s = dgram.createSocket('udp4');
        made.push(s);
        return s;
      },
      tcp: opaque().tcp,
    };
    expect(await socketExchange(up, query, false, 1000, sockets).catch((e) => e.code)).toBe('DNS_UPSTREAM_ERROR');
    expect(calls).toEqual([4]);
    expect(() => made[0]!.address()).toThrow(); // closed, never bound
  });

  it('asks for the family of the upstream', async () => {
    const calls: string[] = [];
    const sockets: UpstreamSockets = {
      udp(family) {
        calls.push(`udp${family}`);
        throw new Error('no');
      },
      tcp(family) {
        calls.push(`tcp${family}`);
        throw new Error('no');
      },
    };
    const v6 = parseUpstream('[::1]:9');
    await socketExchange(v6, query, false, 1000, sockets).catch(() => {});
    await socketExchange(v6, query, true, 1000, sockets).catch(() => {});
    await socketExchange(up, query, true, 1000, sockets).catch(() => {});
    expect(calls).toEqual(['udp6', 'tcp6', 'tcp4']);
  });
});
