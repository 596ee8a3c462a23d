import { describe, expect, it } from 'vitest';
import {
  addrBytes,
  addrFromBytes,
  type Cidr,
  cidrLast,
  cidrSize,
  contains,
  formatAddr,
  formatCidr,
  formatIp4,
  formatMac,
  isNetwork,
  macBytes,
  overlaps,
  parseAddr,
  parseCidr,
  parseIp4,
  prefixMask,
  writeAddr,
} from '../src/index.js';

const cidr = (s: string): Cidr => parseCidr(s) ?? expect.unreachable(`${s} is a CIDR`);

describe('IPv4 text', () => {
  it.each([
    ['0.0.0.0', 0],
    ['10.0.0.1', 0x0a000001],
    ['172.17.0.1', 0xac110001],
    ['255.255.255.255', 0xffffffff],
  ])('%s is %d and back', (s, n) => {
    expect(parseIp4(s)).toBe(n);
    expect(formatIp4(n)).toBe(s);
    expect(parseAddr(s)).toEqual({ family: 4, value: BigInt(n) });
    expect(formatAddr({ family: 4, value: BigInt(n) })).toBe(s);
  });

  // inet_pton's dotted quad: four decimal octets, no leading zeros, nothing around them.
  it.each(['1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.04', '1..3.4', '.1.2.3', '1.2.3.4 ', '', '0x1.2.3.4'])(
    '%j is not one',
    (s) => {
      expect(parseIp4(s)).toBe(-1);
      expect(parseAddr(s)).toBeUndefined();
    },
  );
});

describe('IPv6 text (RFC 5952)', () => {
  it.each([
    ['::', '::'],
    ['::1', '::1'],
    ['fd00::1', 'fd00::1'],
    ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
    ['0000:0000::0001', '::1'],
    ['2001:db8::', '2001:db8::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // 4.2.3: the first of equal runs
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], // 4.2.3: the longest run
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // 4.2.2: never '::' for one group
    ['fd00:0:0:1:0:0:0:0', 'fd00:0:0:1::'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['::ffff:10.1.2.3', '::ffff:a01:203'], // IPv4-mapped: parsed, written in hex groups
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
  ])('%s is %s', (s, canonical) => {
    const a = parseAddr(s);
    expect(a?.family).toBe(6);
    expect(formatAddr(a!)).toBe(canonical);
    expect(parseAddr(canonical)).toEqual(a);
  });

  it('keeps every bit', () => {
    expect(parseAddr('ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe')?.value).toBe((1n << 128n) - 2n);
    expect(parseAddr('8000::')?.value).toBe(1n << 127n);
  });

  it.each(['fe80::1%eth0', '1:2:3:4:5:6:7:8:9', '1::2::3', 'gg::1', ':::', '::ffff:01.2.3.4', '00000::1', 'eth0'])(
    '%j is not an address',
    (s) => {
      expect(parseAddr(s)).toBeUndefined();
    },
  );

  it.each([undefined, null, 42, {}])('%j is not an address', (x) => {
    expect(parseAddr(x)).toBeUndefined();
    expect(parseCidr(x)).toBeUndefined();
  });
});

describe('prefixes', () => {
  it.each([
    ['10.0.0.0/8', 4, 0x0a000000n, 8],
    ['10.9.0.2/24', 4, 0x0a090002n, 24], // the host bits are kept
    ['0.0.0.0/0', 4, 0n, 0],
    ['10.1.2.3/32', 4, 0x0a010203n, 32],
    ['fd00::/64', 6, 0xfd00n << 112n, 64],
    ['::/0', 6, 0n, 0],
    ['::1/128', 6, 1n, 128],
  ])('%s', (s, family, value, prefix) => {
    expect(parseCidr(s)).toEqual({ family, value, prefix });
    expect(formatCidr(cidr(s))).toBe(s);
  });

  it.each(['10.0.0.0', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/1a', '10.0.0.0/0008', '10.0.0.0/8/8'])(
    '%j is not one',
    (s) => {
      expect(parseCidr(s)).toBeUndefined();
    },
  );
  it.each(['fd00::/129', 'nonsense/8', '/8', 'fe80::%eth0/64'])('%j is not one', (s) => {
    expect(parseCidr(s)).toBeUndefined();
  });

  it('formats in canonical text', () => {
    expect(formatCidr(cidr('FD00:0:0:0:0:0:0:0/48'))).toBe('fd00::/48');
  });

  it.each([
    ['10.1.0.0/16', true],
    ['10.1.2.0/16', false],
    ['10.1.2.3/32', true],
    ['0.0.0.0/0', true],
    ['fd00::/64', true],
    ['fd00::1/64', false],
  ])('%s is a network address: %s', (s, want) => {
    expect(isNetwork(cidr(s))).toBe(want);
  });

  it('masks, sizes and ends', () => {
    expect(prefixMask(4, 24)).toBe(0xffffff00n);
    expect(prefixMask(4, 0)).toBe(0n);
    expect(prefixMask(6, 16)).toBe(0xffffn << 112n);
    expect(cidrSize(cidr('10.0.0.0/24'))).toBe(256n);
    expect(cidrSize(cidr('fd00::/64'))).toBe(1n << 64n);
    expect(formatAddr({ family: 4, value: cidrLast(cidr('10.0.0.0/22')) })).toBe('10.0.3.255');
    expect(formatAddr({ family: 4, value: cidrLast(cidr('10.0.1.7/22')) })).toBe('10.0.3.255');
    expect(formatAddr({ family: 6, value: cidrLast(cidr('fd00::/112')) })).toBe('fd00::ffff');
  });
});

describe('contains and overlaps', () => {
  it.each([
    ['10.0.0.0/24', '10.0.0.0', true],
    ['10.0.0.0/24', '10.0.0.255', true],
    ['10.0.0.0/24', '10.0.1.0', false],
    ['10.0.0.7/24', '10.0.0.200', true], // a prefix with host bits: its network counts
    ['0.0.0.0/0', '255.255.255.255', true],
    ['10.0.0.1/32', '10.0.0.1', true],
    ['10.0.0.1/32', '10.0.0.2', false],
    ['10.0.0.0/8', '::a00:1', false], // another family, the same low bits
    ['fd00::/64', 'fd00::ffff:1', true],
    ['fd00::/64', 'fd00:0:0:1::1', false],
  ])('%s holds %s: %s', (c, a, want) => {
    expect(contains(cidr(c), parseAddr(a)!)).toBe(want);
  });

  it.each([
    ['10.0.0.0/8', '10.1.0.0/16', true],
    ['10.1.0.0/16', '10.0.0.0/8', true],
    ['10.0.0.0/24', '10.0.0.0/24', true],
    ['10.0.0.0/24', '10.0.1.0/24', false],
    ['172.17.0.0/16', '172.18.0.0/16', false],
    ['0.0.0.0/0', '192.168.0.0/20', true],
    ['10.0.0.0/8', '::/0', false],
    ['fd00::/48', 'fd00:0:1::/64', false],
    ['fd00::/48', 'fd00:0:0:1::/64', true],
  ])('%s and %s: %s', (a, b, want) => {
    expect(overlaps(cidr(a), cidr(b))).toBe(want);
  });
});

describe('bytes in network order', () => {
  it.each([
    ['10.0.0.1', [10, 0, 0, 1]],
    ['255.255.255.255', [255, 255, 255, 255]],
    ['fd00::1', [0xfd, 0, ...Array(13).fill(0), 1]],
    ['::ffff:192.0.2.1', [...Array(10).fill(0), 0xff, 0xff, 192, 0, 2, 1]],
    ['2001:db8::8:800:200c:417a', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 8, 8, 0, 0x20, 0x0c, 0x41, 0x7a]],
  ])('%s', (s, bytes) => {
    const a = parseAddr(s)!;
    const b = addrBytes(a);
    expect([...b]).toEqual(bytes);
    expect(addrFromBytes(b)).toEqual(a);
    const at = Buffer.alloc(20, 0xee);
    writeAddr(a, at, 2);
    expect([...at.subarray(2, 2 + b.length)]).toEqual(bytes);
    expect(at[1]).toBe(0xee);
    expect(at[2 + b.length]).toBe(0xee);
  });

  it('reads IPv6 from the first 16 bytes, and refuses fewer', () => {
    expect(formatAddr(addrFromBytes(Buffer.concat([addrBytes(parseAddr('fd00::2')!), Buffer.alloc(4)])))).toBe(
      'fd00::2',
    );
    expect(() => addrFromBytes(Buffer.alloc(8))).toThrow(RangeError);
  });
});

describe('MACs', () => {
  it.each([
    ['02:42:ac:11:00:02', '02:42:ac:11:00:02'],
    ['02:42:AC:11:00:02', '02:42:ac:11:00:02'],
    ['ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff'],
  ])('%s is %s', (s, canonical) => {
    const b = macBytes(s)!;
    expect(b.length).toBe(6);
    expect(formatMac(b)).toBe(canonical);
  });

  it('writes each byte as two digits', () => {
    expect(formatMac(Buffer.from([0, 1, 0x0a, 0xab, 0x10, 0xff]))).toBe('00:01:0a:ab:10:ff');
  });

  it.each(['02:42:ac:11:00', '02:42:ac:11:00:02:03', '2:42:ac:11:00:02', '02-42-ac-11-00-02', 'zz:42:ac:11:00:02', ''])(
    '%j is not one',
    (s) => {
      expect(macBytes(s)).toBeUndefined();
    },
  );
});
