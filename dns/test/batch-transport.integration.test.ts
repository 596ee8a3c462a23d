// The native batch transport on real sockets on 127.0.0.1: every client gets its own replies,
// in batches and late, and close frees the socket.
import dgram from 'node:dgram';
import { readdirSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { DnsServer } from '../src/index.js';
import { BatchTransportError, BatchUdpTransport } from '../src/transports/batch.js';
import { Cleanup, digShort, testUpstream } from './net-helpers.js';

const open: Array<{ close(): unknown }> = [];
const cleanup = new Cleanup();
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
  await cleanup.run();
});

function transport(): BatchUdpTransport {
  const t = BatchUdpTransport.bind('127.0.0.1', 0);
  open.push(t);
  return t;
}

async function client(): Promise<dgram.Socket> {
  const c = dgram.createSocket('udp4');
  open.push({ close: () => new Promise<void>((r) => c.close(() => r())) });
  await new Promise<void>((r) => c.bind(0, '127.0.0.1', r));
  return c;
}

/** Collects `n` datagrams (as strings) on `c`, or fails after `ms`. */
function collect(c: dgram.Socket, n: number, ms = 5000): Promise<string[]> {
  const got: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`got ${got.length} of ${n} replies`)), ms);
    c.on('message', (m) => {
      got.push(m.toString());
      if (got.length === n) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

const fds = () => readdirSync('/proc/self/fd').length;

it('answers many packets from several clients, each with its own replies', async () => {
  const t = transport();
  let calls = 0;
  t.listen((packet) => {
    calls++;
    return Buffer.concat([Buffer.from('re:'), packet]);
  });
  const clients = await Promise.all([client(), client(), client(), client()]);
  // Bursts of 4 x 50 datagrams: several per recvmmsg, yet within the kernel's receive buffers.
  const N = 500;
  const BURST = 50;
  for (let start = 0; start < N; start += BURST) {
    const replies = clients.map((c) => collect(c, BURST));
    clients.forEach((c, k) => {
      for (let i = start; i < start + BURST; i++) c.send(`${k}:${i}`, t.port, '127.0.0.1');
    });
    const got = await Promise.all(replies);
    got.forEach((list, k) => {
      const want = Array.from({ length: BURST }, (_, i) => `re:${k}:${start + i}`);
      expect(new Set(list)).toEqual(new Set(want));
    });
    for (const c of clients) c.removeAllListeners('message');
  }
  expect(calls).toBe(4 * N);
  const stats = t.stats();
  expect(stats).toMatchObject({ received: 4 * N, sent: 4 * N, dropped: 0 });
  expect(stats.batches).toBeLessThan(4 * N); // some recvmmsg calls returned several datagrams
});

it('sends late replies with send, to the peer the handler was given', async () => {
  const t = transport();
  t.listen((packet, peer) => {
    const copy = Buffer.from(packet); // the packet is a view of a reused buffer
    setTimeout(() => t.send(Buffer.concat([Buffer.from('late:'), copy]), peer), 20);
    return packet.toString() === 'both' ? Buffer.from('now') : undefined;
  });
  const [a, b] = await Promise.all([client(), client()]);
  const ra = collect(a, 1);
  const rb = collect(b, 2);
  a.send('x', t.port, '127.0.0.1');
  b.send('both', t.port, '127.0.0.1');
  expect(await ra).toEqual(['late:x']);
  expect(await rb).toEqual(['now', 'late:both']);
});

it('serves IPv6 peers, in the batch and late', async (ctx) => {
  let t: BatchUdpTransport;
  try {
    t = BatchUdpTransport.bind('::1', 0);
  } catch (err) {
    // Only a machine without IPv6 (loopback) skips; any other failure to bind is a failure.
    const errno = ((err as { cause?: { code?: string } }).cause?.code ?? '') as string;
    if (errno !== 'EADDRNOTAVAIL' && errno !== 'EAFNOSUPPORT') throw err;
    ctx.skip();
    return;
  }
  open.push(t);
  t.listen((packet, peer) => {
    const copy = Buffer.from(packet);
    setImmediate(() => t.send(Buffer.concat([Buffer.from('late:'), copy]), peer));
    return packet;
  });
  const c = dgram.createSocket('udp6');
  open.push({ close: () => new Promise<void>((r) => c.close(() => r())) });
  await new Promise<void>((r) => c.bind(0, '::1', r));
  const got = collect(c, 2);
  c.send('six', t.port, '::1');
  expect((await got).sort()).toEqual(['late:six', 'six']);
});

it('keeps answering the rest of a batch when the handler throws for one packet', async () => {
  const errors: string[] = [];
  const t = BatchUdpTransport.bind('127.0.0.1', 0, { onError: (e) => errors.push(e.code) });
  open.push(t);
  t.listen((packet) => {
    if (packet.toString() === 'bad') throw new Error('boom');
    return packet;
  });
  const c = await client();
  const got = collect(c, 2);
  for (const m of ['a', 'bad', 'b']) c.send(m, t.port, '127.0.0.1');
  expect((await got).sort()).toEqual(['a', 'b']);
  expect(errors).toEqual(['DNS_BATCH_SOCKET']);
});

it('close is idempotent and frees the fd, listening or not', async () => {
  const before = fds();
  const t = BatchUdpTransport.bind('127.0.0.1', 0);
  const idle = BatchUdpTransport.bind('127.0.0.1', 0);
  expect(fds()).toBe(before + 2);
  t.listen((p) => p);
  const port = t.port;
  await t.close();
  await t.close();
  await idle.close();
  await idle.close();
  expect(fds()).toBe(before);
  t.send(Buffer.from('ignored'), new Uint8Array(28)); // after close: a no-op, as with dgram
  // The port is free again.
  const again = BatchUdpTransport.bind('127.0.0.1', port);
  await again.close();
});

it('reports bind errors with codes', () => {
  const t = transport();
  expect(() => BatchUdpTransport.bind('127.0.0.1', t.port)).toThrow(
    expect.objectContaining({ code: 'DNS_BATCH_SOCKET', cause: expect.objectContaining({ code: 'EADDRINUSE' }) }),
  );
  expect(() => BatchUdpTransport.bind('localhost', 0)).toThrow(BatchTransportError);
});

it('carries the DnsServer: table answers in the batch, forwarded ones later', async () => {
  const up = await testUpstream(cleanup, (q) => ({
    type: 'response',
    answers: [{ type: 'A', name: q.questions![0]!.name, ttl: 60, data: '192.0.2.7' }],
  }));
  const server = new DnsServer({ upstreams: [up.address], upstreamTimeout: 500 });
  cleanup.add(() => server.close());
  server.table.upsertEndpoint({ network: 'front', id: 'c1', name: 'web', addresses: ['10.0.0.2'] });
  const udp = BatchUdpTransport.bind('127.0.0.1', 0);
  const port = udp.port;
  server.addSandbox('sb', { udp, networks: ['front'] });
  await server.start();
  expect(await digShort(port, '+notcp', 'web')).toEqual(['10.0.0.2']);
  expect(await digShort(port, '+notcp', 'elsewhere.test')).toEqual(['192.0.2.7']);
  expect(up.queries).toHaveLength(1);
  expect(udp.stats()).toMatchObject({ received: 2, sent: 2, dropped: 0 });
});
