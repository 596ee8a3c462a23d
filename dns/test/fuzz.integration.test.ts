import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DnsServer, errorChannel } from '../src/index.js';
import { decode, encodeQuery, type Message } from '../src/internal.js';
import { sampleTable } from './helpers.js';
import { addLoopbackSandbox, Cleanup, digShort, testUpstream } from './net-helpers.js';

// 100,000 random and mutated packets at a live server over UDP (and a few hundred streams over
// TCP); after each round a good query must be answered correctly, and at the end the server
// still answers table names and forwarded names. Deterministic: a seeded generator.

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = [
  'web',
  'WWW',
  'api',
  'tasks.api',
  'rr',
  '_http._tcp.api',
  '2.0.0.10.in-addr.arpa',
  'x.test',
  'web.front',
];
const TYPES = ['A', 'AAAA', 'PTR', 'SRV', 'MX', 'TXT', 'ANY', 'AXFR', 'CNAME'];

function packet(r: () => number): Buffer {
  const int = (n: number) => Math.floor(r() * n);
  if (r() < 0.3) return Buffer.from(Array.from({ length: int(600) }, () => int(256)));
  const edns = r() < 0.5 ? 512 + int(4000) : undefined;
  const q = encodeQuery(NAMES[int(NAMES.length)]!, TYPES[int(TYPES.length)]!, { id: int(65536), edns });
  const b = Buffer.from(q);
  switch (int(5)) {
    case 0: // flip bytes anywhere
      for (let i = 0, n = 1 + int(4); i < n; i++) b[int(b.length)] = int(256);
      return b;
    case 1: // flip bytes in the header only: counts, opcode, QR
      for (let i = 0, n = 1 + int(3); i < n; i++) b[2 + int(10)] = int(256);
      return b;
    case 2: // truncated
      return b.subarray(0, int(b.length));
    case 3: // garbage appended, or a compression pointer planted in the name
      if (r() < 0.5) return Buffer.concat([b, Buffer.from(Array.from({ length: 1 + int(40) }, () => int(256)))]);
      b[12 + int(Math.max(1, b.length - 16))] = 0xc0 | int(64);
      return b;
    default: // labels lengths off by a little
      b[12] = (b[12]! + int(5) - 2) & 0xff;
      return b;
  }
}

describe('fuzz', () => {
  it('survives 100,000 random and mutated packets and still answers correctly', async () => {
    const up = await testUpstream(cleanup, (q) =>
      q.questions?.[0]?.type === 'A'
        ? { type: 'response', answers: [{ type: 'A', name: q.questions[0].name, ttl: 5, data: '192.0.2.44' }] }
        : ({ type: 'response', flags: 3 } as Message),
    );
    const server = new DnsServer({ table: sampleTable(), upstreams: [up.address], upstreamTimeout: 500 });
    cleanup.add(() => server.close());
    const port = await addLoopbackSandbox(server, 'sb', { networks: ['front'] });
    await server.start();
    let internal = 0;
    const onError = (e: unknown) => {
      if ((e as { reason: string }).reason === 'internal') internal++;
    };
    errorChannel.subscribe(onError);
    cleanup.add(() => errorChannel.unsubscribe(onError));

    const client = dgram.createSocket('udp4');
    await new Promise<void>((res) => client.bind(0, '127.0.0.1', res));
    cleanup.add(() => new Promise<void>((res) => client.close(() => res())));
    const waiting = new Map<number, (m: Message) => void>();
    client.on('message', (msg) => {
      if (msg.length < 2) return;
      const done = waiting.get(msg.readUInt16BE(0));
      if (!done) return;
      // A fuzz packet may carry the sentinel's ID: only the sentinel's question counts.
      try {
        const m = decode(msg);
        if (m.questions?.[0]?.name === 'WeB' && m.questions[0].type === 'A') done(m);
      } catch {}
    });
    const sentinel = async (id: number): Promise<Message> => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const got = new Promise<Message | undefined>((res) => {
          waiting.set(id, res);
          setTimeout(() => res(undefined), 1000);
        });
        client.send(encodeQuery('WeB', 'A', { id }), port, '127.0.0.1');
        const m = await got;
        if (m) return m;
        if (process.env.FUZZ_DEBUG) console.log('sentinel lost', id, attempt);
      }
      throw new Error('the server stopped answering');
    };

    const r = rng(0x5eed);
    const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 400);
    const PER_ROUND = 250;
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < PER_ROUND; i++) {
        client.send(packet(r), port, '127.0.0.1');
        // The server shares this event loop: let it read before its receive buffer overflows.
        if (i % 20 === 19) await new Promise((res) => setImmediate(res));
      }
      const id = 60_000 + (round % 5000);
      const m = await sentinel(id);
      waiting.delete(id);
      expect(m.answers?.map((a) => a.data)).toEqual(['10.0.0.2']);
      expect(m.questions?.[0]?.name).toBe('WeB');
    }

    // TCP: random streams, then a good query on a fresh connection.
    for (let i = 0; i < 300; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise<void>((res) => s.once('connect', () => res()));
      const p = packet(r);
      const len = r() < 0.5 ? p.length : Math.floor(r() * 65536);
      s.end(Buffer.concat([Buffer.from([len >> 8, len & 255]), p]));
      s.destroy();
    }

    expect(internal).toBe(0);
    expect(await digShort(port, 'web')).toEqual(['10.0.0.2']);
    expect(await digShort(port, '+tcp', 'tasks.api')).toEqual(['10.0.0.11', '10.0.0.12']);
    expect(await digShort(port, 'fine.test')).toEqual(['192.0.2.44']);
  }, 120_000);
});
