// Just enough address arithmetic to validate what reaches nft and to compare addresses in
// canonical form (a port published on "::" and on "0::0" is the same port): @cnmd/ipam's
// parsing and RFC 5952 formatting, in the shape the firewall's state uses (undefined for bad
// input rather than a thrown error).
import { cidrOverlaps, formatIp, parseCidr as ipamCidr, parseIp, prefixMask } from '@cnmd/ipam/internal';

export type Family = 4 | 6;

export interface Addr {
  family: Family;
  value: bigint;
}

export interface Cidr extends Addr {
  prefix: number;
}

export function parseAddr(s: string): Addr | undefined {
  return typeof s === 'string' ? parseIp(s) : undefined;
}

export const formatAddr = (a: Addr): string => formatIp(a.family, a.value);

/** "10.1.0.0/24" or "fd00::/64"; the address must be the network address (nft would silently
 * widen it otherwise, and a subnet with host bits is a mistake upstream). */
export function parseCidr(s: string): Cidr | undefined {
  try {
    const c = ipamCidr(s);
    return { family: c.family, value: c.base, prefix: c.prefix };
  } catch {
    return undefined;
  }
}

export const formatCidr = (c: Cidr): string => `${formatAddr(c)}/${c.prefix}`;

export function contains(c: Cidr, a: Addr): boolean {
  return c.family === a.family && (a.value & prefixMask(c.family, c.prefix)) === c.value;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return cidrOverlaps(
    { family: a.family, base: a.value, prefix: a.prefix },
    { family: b.family, base: b.value, prefix: b.prefix },
  );
}

export const isUnspecified = (a: Addr): boolean => a.value === 0n;
