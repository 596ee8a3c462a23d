// Just enough address arithmetic to validate what reaches nft and to compare addresses in
// canonical form (a port published on "::" and on "0::0" is the same port).
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface Addr {
  family: Family;
  value: bigint;
}

export interface Cidr extends Addr {
  prefix: number;
}

const bits = (f: Family): number => (f === 4 ? 32 : 128);

export function parseAddr(s: string): Addr | undefined {
  if (typeof s !== 'string') return undefined;
  if (isIPv4(s)) return { family: 4, value: s.split('.').reduce((a, o) => (a << 8n) | BigInt(o), 0n) };
  if (!isIPv6(s) || s.includes('%')) return undefined;
  let text = s;
  // An IPv4 tail (::ffff:192.0.2.1) becomes two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = parseAddr(dotted[1]!)!.value;
    text = `${text.slice(0, dotted.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
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

const mask = (f: Family, prefix: number): bigint => {
  const n = BigInt(bits(f));
  return (((1n << n) - 1n) >> (n - BigInt(prefix))) << (n - BigInt(prefix));
};

/** "10.1.0.0/24" or "fd00::/64"; the address must be the network address (nft would silently
 * widen it otherwise, and a subnet with host bits is a mistake upstream). */
export function parseCidr(s: string): Cidr | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  const a = m ? parseAddr(m[1]!) : undefined;
  if (!a) return undefined;
  const prefix = Number(m![2]);
  if (prefix > bits(a.family) || (a.value & mask(a.family, prefix)) !== a.value) return undefined;
  return { ...a, prefix };
}

export const formatCidr = (c: Cidr): string => `${formatAddr(c)}/${c.prefix}`;

export function contains(c: Cidr, a: Addr): boolean {
  return c.family === a.family && (a.value & mask(c.family, c.prefix)) === c.value;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const p = Math.min(a.prefix, b.prefix);
  return (a.value & mask(a.family, p)) === (b.value & mask(b.family, p));
}

export const isUnspecified = (a: Addr): boolean => a.value === 0n;
