import { describe, expect, it } from 'vitest';
import {
  addressBytes,
  answerLines,
  assemble,
  decode,
  encodeQuery,
  prepare,
  type Rr,
  readQuery,
} from '../src/internal.js';

const a = (n: number): Rr => ({ owner: 'many', type: 1, ttl: 600, rdata: addressBytes(`10.0.${n >> 8}.${n & 255}`) });

function ask(p: ReturnType<typeof prepare>, edns?: number, limit?: number) {
  const query = encodeQuery('MANY', 'A', { id: 9, edns });
  const q = readQuery(query);
  if (typeof q === 'number') throw new Error('bad query');
  return decode(assemble(p, query, q, limit ?? q.udpSize));
}

describe('prepared answers', () => {
  it('rotates: each address comes first in turn (round robin)', () => {
    const p = prepare(0, [a(1), a(2), a(3)], [], 'many');
    const firsts = [1, 2, 3, 4].map(() => answerLines(ask(p))[0]);
    expect(firsts).toEqual(['A 10.0.0.1', 'A 10.0.0.2', 'A 10.0.0.3', 'A 10.0.0.1']);
  });

  it('keeps every address in every order, also past 16 addresses', () => {
    const p = prepare(
      0,
      Array.from({ length: 40 }, (_, i) => a(i)),
      [],
      'many',
    );
    for (let i = 0; i < 20; i++) expect(new Set(answerLines(ask(p, 4096))).size).toBe(40);
  });

  it('truncates at an RR boundary with TC past 512 bytes without EDNS (RFC 2181 9)', () => {
    const p = prepare(
      0,
      Array.from({ length: 40 }, (_, i) => a(i)),
      [],
      'many',
    );
    const small = ask(p);
    expect(small.flag_tc).toBe(true);
    expect(small.answers!.length).toBeGreaterThan(20);
    expect(small.answers!.length).toBeLessThan(40);
    const big = ask(p, 4096);
    expect(big.flag_tc).toBe(false);
    expect(big.answers).toHaveLength(40);
  });
});
