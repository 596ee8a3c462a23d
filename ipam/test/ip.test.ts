import { formatAddr, formatIp4, parseAddr, parseIp4 } from '@cnmd/netutil';
import { describe, expect, it } from 'vitest';
import { parseCidr } from '../src/internal.js';
import { codeOf } from './helpers.js';

describe('parseIp4', () => {
  it.each([
    ['0.0.0.0', 0],
    ['172.17.0.1', 0xac110001],
    ['255.255.255.255', 0xffffffff],
    ['1.2.3', -1],
    ['1.2.3.4.5', -1],
    ['256.1.1.1', -1],
    ['01.2.3.4', -1],
    ['1..3.4', -1],
    ['1.2.3.4 ', -1],
    ['', -1],
    ['a.b.c.d', -1],
  ])('%s → %d', (s, n) => {
    expect(parseIp4(s)).toBe(n);
    if (n >= 0) expect(formatIp4(n)).toBe(s);
  });
});

describe('IPv6 round trip (RFC 5952 text)', () => {
  it.each([
    ['fd00::1', 'fd00::1'],
    ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8::', '2001:db8::'],
    ['::', '::'],
    ['::1', '::1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['::ffff:10.1.2.3', '::ffff:a01:203'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ])('%s → %s', (s, out) => {
    const ip = parseAddr(s);
    expect(ip?.family).toBe(6);
    expect(formatAddr(ip!)).toBe(out);
  });

  it.each(['fe80::1%eth0', '1:2:3:4:5:6:7:8:9', 'gg::1', ':::'])('rejects %s', (s) => {
    expect(parseAddr(s)).toBeUndefined();
  });
});

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', 4, 8],
    ['172.17.0.0/16', 4, 16],
    ['192.168.1.4/30', 4, 30],
    ['10.1.2.3/32', 4, 32],
    ['fd00::/64', 6, 64],
    ['::/0', 6, 0],
  ])('%s', (s, family, prefix) => {
    expect(parseCidr(s)).toMatchObject({ family, prefix });
  });

  it.each([
    ['10.1.2.3/16', /should be 10\.1\.0\.0\/16/],
    ['10.0.0.0', /no prefix/],
    ['10.0.0.0/33', /prefix length/],
    ['10.0.0.0/-1', /prefix length/],
    ['10.0.0.0/1a', /prefix length/],
    ['fd00::1/64', /should be fd00::\/64/],
    ['nonsense/8', /not an IPv4 or IPv6/],
  ])('refuses %s', async (s, why) => {
    expect(await codeOf(() => parseCidr(s))).toBe('IPAM_INVALID_CIDR');
    expect(() => parseCidr(s)).toThrow(why);
  });
});
