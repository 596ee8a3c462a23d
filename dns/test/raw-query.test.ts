import { describe, expect, it } from 'vitest';
import { DROP, encode, encodeQuery, FORMERR, NOTIMP, readQuery, wireKey } from '../src/internal.js';

const good = encodeQuery('Web.Front', 'A', { id: 0x1234 });
function patch(buf: Buffer, at: number, ...bytes: number[]): Buffer {
  const b = Buffer.from(buf);
  bytes.forEach((v, i) => {
    b[at + i] = v;
  });
  return b;
}

describe('readQuery: what the fast path reads from raw bytes', () => {
  it('reads the question, lower-cased for the key, and no EDNS', () => {
    expect(readQuery(good)).toMatchObject({
      id: 0x1234,
      key: wireKey('web.front'),
      type: 1,
      class: 1,
      qEnd: good.length,
      edns: false,
      udpSize: 512,
    });
  });

  it('reads the OPT record: payload size, DO bit, version', () => {
    expect(readQuery(encodeQuery('a', 'AAAA', { edns: 4096 }))).toMatchObject({ edns: true, udpSize: 4096, type: 28 });
    expect(readQuery(encodeQuery('a', 'A', { edns: 100 }))).toMatchObject({ edns: true, udpSize: 512 });
  });

  it('folds only ASCII letters (RFC 4343)', () => {
    const q = readQuery(patch(encodeQuery('ab', 'A'), 13, 0xc1));
    expect(typeof q === 'object' && q.key).toBe('\x02\xc1b');
  });

  it.each<[string, Buffer, number]>([
    ['a short header', good.subarray(0, 11), DROP],
    ['a response', patch(good, 2, 0x81), DROP],
    ['opcode NOTIFY', patch(good, 2, 0x20), NOTIMP],
    ['opcode UPDATE', patch(good, 2, 0x28), NOTIMP],
    ['qdcount 0', patch(good, 4, 0, 0), FORMERR],
    ['qdcount 2', patch(good, 4, 0, 2), FORMERR],
    ['a label of 64', patch(good, 12, 64), FORMERR],
    ['a label past the end', patch(good, 12, 60), FORMERR],
    ['a compression pointer in the question', patch(good, 12, 0xc0, 12), FORMERR],
    ['a pointer to itself (a loop)', patch(good, 12, 0xc0, 0x0c), FORMERR],
    ['a forward pointer', patch(good, 12, 0xc0, 0x20), FORMERR],
    ['an extended label type', patch(good, 12, 0x41), FORMERR],
    ['no qtype', good.subarray(0, good.length - 3), FORMERR],
    ['no root label', good.subarray(0, 12 + 4), FORMERR],
  ])('%s: %i', (_, packet, verdict) => {
    expect(readQuery(packet)).toBe(verdict);
  });

  it('refuses a name over 255 octets (RFC 1035 2.3.4)', () => {
    const labels = Array(5).fill(Buffer.concat([Buffer.from([60]), Buffer.alloc(60, 0x61)]));
    const q = Buffer.concat([good.subarray(0, 12), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
    expect(readQuery(q)).toBe(FORMERR);
  });

  it('decodes odd queries in full: two OPT records are FORMERR, a bad trailing record too, the question read', () => {
    const opt = { type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [] } as never;
    const two = encode({ type: 'query', id: 1, questions: [{ name: 'a', type: 'A' }], additionals: [opt, opt] });
    expect(readQuery(two)).toMatchObject({ error: FORMERR, key: wireKey('a'), edns: false });
    const bad = patch(encodeQuery('a', 'A', { edns: 1232 }), 11, 2);
    expect(readQuery(bad)).toMatchObject({ error: FORMERR, key: wireKey('a') });
    expect(readQuery(good)).toMatchObject({ error: 0 });
  });

  it('flags an EDNS version above 0 (BADVERS)', () => {
    const q = encodeQuery('a', 'A', { edns: 1232 });
    expect(readQuery(patch(q, q.length - 5, 1))).toMatchObject({ error: 16, edns: true });
  });
});
