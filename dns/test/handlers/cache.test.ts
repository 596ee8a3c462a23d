import { describe, expect, it } from 'vitest';
import type { Answer } from '../../src/internal.js';
import {
  AnswerCache,
  decode,
  encode,
  encodeQuery,
  parseUpstreamMessage,
  readQuery,
  relayReply,
} from '../../src/internal.js';

function upstream(rcode: number, answers: Answer[], authorities: Answer[] = []) {
  const buf = encode({
    type: 'response',
    id: 7,
    flags: 0x8180 | rcode,
    questions: [{ name: 'foo.test', type: 'A', class: 'IN' }],
    answers,
    authorities,
  });
  return parseUpstreamMessage(buf, 12 + 10 + 4);
}

const soa = (ttl: number, minimum: number): Answer => ({
  type: 'SOA',
  name: 'test',
  ttl,
  data: { mname: 'ns.test', rname: 'h.test', serial: 1, refresh: 1, retry: 1, expire: 1, minimum },
});

describe('cache: forwarded answers for their TTL', () => {
  it.each([
    [
      'positive: the least answer TTL',
      upstream(0, [
        { type: 'A', name: 'foo.test', ttl: 300, data: '192.0.2.1' },
        { type: 'A', name: 'foo.test', ttl: 30, data: '192.0.2.2' },
      ]),
      30,
    ],
    ['NXDOMAIN: min(SOA TTL, MINIMUM) (RFC 2308)', upstream(3, [], [soa(900, 120)]), 120],
    ['NODATA: the same', upstream(0, [], [soa(60, 3600)]), 60],
    ['NXDOMAIN without SOA: not cached', upstream(3, []), 0],
    ['SERVFAIL: not cached', upstream(2, []), 0],
  ])('%s', (_, msg, ttl) => {
    expect(msg.ttl).toBe(ttl);
  });

  it('expires entries and keeps the most recently used within its size', () => {
    let now = 0;
    const c = new AnswerCache(2, 3600, () => now);
    const m = upstream(0, [{ type: 'A', name: 'foo.test', ttl: 10, data: '192.0.2.1' }]);
    c.set('a', m);
    c.set('b', m);
    c.get('a');
    c.set('c', m);
    expect([c.get('a'), c.get('b'), c.get('c')].map(Boolean)).toEqual([true, false, true]);
    now = 9_999;
    expect(c.get('a')?.age).toBe(9);
    now = 10_000;
    expect(c.get('a')).toBeUndefined();
  });

  it('caps a long TTL', () => {
    let now = 0;
    const c = new AnswerCache(10, 60, () => now);
    c.set('a', upstream(0, [{ type: 'A', name: 'foo.test', ttl: 86400, data: '192.0.2.1' }]));
    now = 60_000;
    expect(c.get('a')).toBeUndefined();
  });

  it('serves a hit with TTLs aged, the asker ID and case', () => {
    const m = upstream(0, [{ type: 'A', name: 'foo.test', ttl: 300, data: '192.0.2.1' }]);
    const query = encodeQuery('FOO.test', 'A', { id: 4242 });
    const q = readQuery(query);
    if (typeof q === 'number') throw new Error('bad query');
    const out = decode(relayReply(m, 100, query, q, 512));
    expect(out.id).toBe(4242);
    expect(out.questions?.[0]?.name).toBe('FOO.test');
    expect(out.answers?.[0]).toMatchObject({ name: 'FOO.test', ttl: 200, data: '192.0.2.1' });
  });
});
