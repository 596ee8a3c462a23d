// lb's addresses: @cnmd/netutil's parsing and RFC 5952 text, less IPv6 in mixed notation
// (::ffff:10.0.0.1), which lb has always refused: a VIP or backend is a dotted quad or hex
// groups, and the data planes diff addresses by that one canonical text.
import {
  type Addr,
  parseAddr as addr,
  type Cidr,
  parseCidr as cidr,
  familyBits,
  formatAddr,
  parseIp4,
} from '@cnmd/netutil';

const mixed = (s: unknown): boolean => typeof s === 'string' && s.includes(':') && s.includes('.');

export const parseAddr = (s: unknown): Addr | undefined => (mixed(s) ? undefined : addr(s));

/** "10.1.0.0/16", "fd00::/64"; the host bits are kept. */
export const parseCidr = (s: unknown): Cidr | undefined => (mixed(s) ? undefined : cidr(s));

/** The canonical text of an address, or undefined when it is not one. */
export function canonical(s: unknown): string | undefined {
  // The common case without BigInt: a dotted quad without leading zeros is already canonical
  // (the data planes canonicalise every address of 10,000 services on each change).
  if (typeof s === 'string' && parseIp4(s) >= 0) return s;
  const a = parseAddr(s);
  return a && formatAddr(a);
}

export const familyOf = (s: string): 4 | 6 | undefined => parseAddr(s)?.family;

/** The network address of a subnet (no host can have it, so a VIP cannot either). */
export function isNetworkAddress(c: Cidr, a: Addr): boolean {
  const shift = BigInt(familyBits(c.family) - c.prefix);
  return c.prefix < familyBits(c.family) - 1 && (a.value & ((1n << shift) - 1n)) === 0n;
}
