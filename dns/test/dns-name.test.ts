import { describe, expect, it } from 'vitest';
import { addressBytes, formatAddress, fromWireKey, lower, ptrName, wireKey } from '../src/internal.js';

describe('names and addresses', () => {
  it.each([
    ['10.1.2.3', '10.1.2.3', '3.2.1.10.in-addr.arpa'],
    ['fd00::2', 'fd00::2', '2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa'],
    ['FD00:0:0:0:0:0:0:1', 'fd00::1', `1.${'0.'.repeat(27)}0.0.d.f.ip6.arpa`],
    ['::ffff:10.0.0.1', '::ffff:a00:1', `1.0.0.0.0.0.a.0.f.f.f.f.${'0.'.repeat(19)}0.ip6.arpa`],
    [
      '2001:db8:0:0:1:0:0:1',
      '2001:db8::1:0:0:1',
      `1.0.0.0.${'0.'.repeat(7)}0.1.0.0.0.${'0.'.repeat(7)}0.8.b.d.0.1.0.0.2.ip6.arpa`,
    ],
  ])('%s is %s, reverse %s', (text, canonical, reverse) => {
    const b = addressBytes(text);
    expect(formatAddress(b)).toBe(canonical);
    expect(ptrName(b)).toBe(reverse);
  });

  it('lower-cases ASCII only, and round-trips wire keys', () => {
    expect(lower('WeB.Ünï')).toBe('web.Ünï');
    expect(fromWireKey(wireKey('a.bc.def'))).toBe('a.bc.def');
    expect(fromWireKey('\x03a.b')).toBeUndefined();
  });
});
