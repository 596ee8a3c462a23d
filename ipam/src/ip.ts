// Addresses and prefixes. IPv4 addresses are plain numbers on the hot path (allocation in a
// bitmap); prefixes and IPv6 addresses are bigints, which keeps one set of prefix arithmetic
// for both families.
import { isIPv6 } from 'node:net';
import { IpamError } from './errors.js';

export type Family = 4 | 6;

export interface Cidr {
  readonly family: Family;
  /** The network address. */
  readonly base: bigint;
  readonly prefix: number;
}

export const familyBits = (f: Family): number => (f === 4 ? 32 : 128);

/** Parses a dotted quad (no leading zeros, as inet_pton); -1 when it is not one. */
export function parseIp4(s: string): number {
  // Hand-rolled: releasing an address parses one, and a regex costs more than the rest of it.
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

export function formatIp4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function parseIp6(s: string): bigint {
  // RFC 4291 2.2: x:x:x:x:x:x:x:x, '::' for one run of zero groups, a dotted quad at the end.
  let text = s;
  const dot = text.lastIndexOf('.');
  if (dot >= 0) {
    const colon = text.lastIndexOf(':');
    const v4 = parseIp4(text.slice(colon + 1));
    text = `${text.slice(0, colon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(Number.parseInt(g, 16));
  return v;
}

function formatIp6(v: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952 4.2: compress the longest run (first if tied) of two or more zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Parses an IPv4 or IPv6 address; undefined when it is neither. */
export function parseIp(s: string): { family: Family; value: bigint } | undefined {
  const v4 = parseIp4(s);
  if (v4 >= 0) return { family: 4, value: BigInt(v4) };
  if (isIPv6(s) && !s.includes('%')) return { family: 6, value: parseIp6(s) };
  return undefined;
}

export function formatIp(family: Family, value: bigint): string {
  return family === 4 ? formatIp4(Number(value)) : formatIp6(value);
}

export function requireIp(s: string, what = 'address'): { family: Family; value: bigint } {
  const ip = typeof s === 'string' ? parseIp(s) : undefined;
  if (!ip) throw new IpamError('IPAM_INVALID_ADDRESS', `invalid ${what} ${JSON.stringify(s)}`);
  return ip;
}

/** Parses "a.b.c.d/n" or "x::/n"; the address must be the network address, as Docker asks. */
export function parseCidr(s: string): Cidr {
  const bad = (why: string) => new IpamError('IPAM_INVALID_CIDR', `invalid CIDR ${JSON.stringify(s)}: ${why}`);
  if (typeof s !== 'string') throw bad('not a string');
  const slash = s.indexOf('/');
  if (slash < 0) throw bad('no prefix length');
  const ip = parseIp(s.slice(0, slash));
  if (!ip) throw bad('not an IPv4 or IPv6 address');
  const len = s.slice(slash + 1);
  const prefix = Number(len);
  const bits = familyBits(ip.family);
  if (!/^\d{1,3}$/.test(len) || prefix > bits) throw bad(`prefix length must be 0 to ${bits}`);
  const cidr = { family: ip.family, base: ip.value & prefixMask(ip.family, prefix), prefix };
  if (cidr.base !== ip.value) throw bad(`it should be ${formatCidr(cidr)}`);
  return cidr;
}

export function prefixMask(family: Family, prefix: number): bigint {
  const bits = familyBits(family);
  const all = (1n << BigInt(bits)) - 1n;
  return (all >> BigInt(bits - prefix)) << BigInt(bits - prefix);
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.family, c.base)}/${c.prefix}`;
}

export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(familyBits(c.family) - c.prefix);
}

export function cidrLast(c: Cidr): bigint {
  return c.base + cidrSize(c) - 1n;
}

export function cidrContains(c: Cidr, family: Family, value: bigint): boolean {
  return c.family === family && value >= c.base && value <= cidrLast(c);
}

export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base <= cidrLast(b) && b.base <= cidrLast(a);
}
