// Just enough address arithmetic to validate services and to hold addresses in one canonical
// text form (the data planes diff by text, and nft prints IPv6 the RFC 5952 way).
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface Addr {
  family: Family;
  value: bigint;
}

export interface Cidr extends Addr {
  prefix: number;
}

export function parseAddr(s: unknown): Addr | undefined {
  if (typeof s !== 'string') return undefined;
  if (isIPv4(s)) return { family: 4, value: s.split('.').reduce((a, o) => (a << 8n) | BigInt(o), 0n) };
  if (!isIPv6(s) || s.includes('%') || s.includes('.')) return undefined;
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return { family: 6, value: groups.reduce((a, g) => (a << 16n) | BigInt(`0x${g}`), 0n) };
}

export function formatAddr(a: Addr): string {
  if (a.family === 4) return [24n, 16n, 8n, 0n].map((s) => (a.value >> s) & 0xffn).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((a.value >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952 4.2: the longest run of two or more zero groups becomes "::", the first if tied.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The canonical text of an address, or undefined when it is not one. */
export function canonical(s: unknown): string | undefined {
  // The common case without BigInt: a dotted quad without leading zeros is already canonical
  // (the data planes canonicalise every address of 10,000 services on each change).
  if (typeof s === 'string' && isCanonical4(s)) return s;
  const a = parseAddr(s);
  return a && formatAddr(a);
}

/** Four decimal octets, no leading zeros, each at most 255: read once, char by char. */
function isCanonical4(s: string): boolean {
  let octets = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46; // a final '.' closes the last octet
    if (c === 46) {
      if (digits === 0 || value > 255 || ++octets > 4) return false;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && value === 0) return false; // a leading zero
      value = value * 10 + (c - 48);
      digits++;
    } else return false;
  }
  return octets === 4;
}

export function familyOf(s: string): Family | undefined {
  if (isIPv4(s)) return 4;
  return isIPv6(s) && !s.includes('%') && !s.includes('.') ? 6 : undefined;
}

export function parseCidr(s: unknown): Cidr | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  const a = m && parseAddr(m[1]);
  if (!a) return undefined;
  const prefix = Number(m![2]);
  if (prefix > (a.family === 4 ? 32 : 128)) return undefined;
  return { ...a, prefix };
}

export function contains(c: Cidr, a: Addr): boolean {
  if (c.family !== a.family) return false;
  const shift = BigInt((c.family === 4 ? 32 : 128) - c.prefix);
  return c.value >> shift === a.value >> shift;
}

/** The network address of a subnet (no host can have it, so a VIP cannot either). */
export function isNetworkAddress(c: Cidr, a: Addr): boolean {
  const shift = BigInt((c.family === 4 ? 32 : 128) - c.prefix);
  return c.prefix < (c.family === 4 ? 31 : 127) && (a.value & ((1n << shift) - 1n)) === 0n;
}
