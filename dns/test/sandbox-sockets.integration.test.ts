import { afterEach, describe, expect, it } from 'vitest';
import { DnsServer } from '../src/index.js';
import { encodeQuery, parseUpstream, socketExchange } from '../src/internal.js';
import { addLoopbackSandbox, Cleanup, digShort, loopbackSockets, type Source, testUpstream } from './net-helpers.js';

// A sandbox's forwarded queries leave through sockets the sidecar opens inside its namespace.
// Here a loopback address of its own (127.0.0.2) stands in for the namespace, and the test
// upstream answers by the source it sees, as an upstream with an ACL or a view would.

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const INSIDE = '127.0.0.2';

/** Answers 192.0.2.2 to queries from INSIDE, 192.0.2.1 to any other source. */
async function viewUpstream() {
  return testUpstream(cleanup, (q, _tcp, from: Source) => ({
    type: 'response',
    answers: [
      { type: 'A', name: q.questions![0]!.name, ttl: 300, data: from.address === INSIDE ? '192.0.2.2' : '192.0.2.1' },
    ],
  }));
}

describe("a sandbox's own upstream sockets", () => {
  it('carry its UDP and TCP exchanges: the upstream sees their source', async () => {
    const up = await viewUpstream();
    const sockets = loopbackSockets(INSIDE);
    const u = parseUpstream(up.address);
    await socketExchange(u, encodeQuery('a.test', 'A', { id: 7 }), false, 2000, sockets);
    await socketExchange(u, encodeQuery('b.test', 'A', { id: 8 }), true, 2000, sockets);
    expect(sockets.calls).toEqual(['udp4', 'tcp4']);
    expect(up.sources[0]).toMatchObject({ transport: 'udp', address: INSIDE });
    // The TCP connection the upstream accepted is the opener's socket.
    expect(up.sources[1]).toEqual({ transport: 'tcp', address: INSIDE, port: sockets.tcpPorts[0] });
  });

  it('make what dig sees in the sandbox the answer for the sandbox, cached apart from others', async () => {
    const up = await viewUpstream();
    const server = new DnsServer({ upstreams: [up.address], upstreamTimeout: 1000 });
    cleanup.add(() => server.close());
    const sockets = loopbackSockets(INSIDE);
    const inside = await addLoopbackSandbox(server, 'inside', { networks: ['front'], sockets });
    const outside = await addLoopbackSandbox(server, 'outside', { networks: ['front'] });
    await server.start();

    expect(await digShort(inside, 'x.test')).toEqual(['192.0.2.2']);
    expect(await digShort(outside, 'x.test')).toEqual(['192.0.2.1']); // not the inside's cached answer
    expect(await digShort(inside, 'x.test')).toEqual(['192.0.2.2']); // cached for the inside
    expect(await digShort(inside, '+tcp', 'y.test')).toEqual(['192.0.2.2']);
    expect(sockets.calls).toEqual(['udp4', 'tcp4']);
    expect(up.sources.map((s) => `${s.transport} ${s.address}`)).toEqual([
      `udp ${INSIDE}`,
      'udp 127.0.0.1',
      `tcp ${INSIDE}`,
    ]);
    expect(up.sources[2]!.port).toBe(sockets.tcpPorts[0]);

    // Back to the server's own sockets: the answer of the server's namespace, not the cached one.
    server.configureSandbox('inside', { sockets: undefined });
    expect(await digShort(inside, 'x.test')).toEqual(['192.0.2.1']);
    expect(sockets.calls).toHaveLength(2);
  });
});
