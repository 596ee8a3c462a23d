// IP addresses and prefixes, one representation for ipam's pools, lb's services and the
// sidecar's firewall and rtnetlink: a family and a bigint value, which keeps one set of prefix
// arithmetic for both families. IPv4 text has number-only paths beside it (parseIp4,
// formatIp4): ipam parses and formats an address on every allocation and release. Bad input
// gives undefined; each package turns that into an error of its own.
import { isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface Addr {
  readonly family: Family;
  readonly value: bigint;
}

/** An address and a prefix length. parseCidr keeps the host bits (10.0.0.2/24, an interface's
 * address); a subnet's value is its network address (isNetwork). */
export interface Cidr extends Addr {
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

/** Text that isIPv6 has accepted. */
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

/** An IPv4 or IPv6 address (either case, a trailing dotted quad allowed, no zone); undefined
 * when it is neither. */
export function parseAddr(s: unknown): Addr | undefined {
  if (typeof s !== 'string') return undefined;
  const v4 = parseIp4(s);
  if (v4 >= 0) return { family: 4, value: BigInt(v4) };
  if (isIPv6(s) && !s.includes('%')) return { family: 6, value: parseIp6(s) };
  return undefined;
}

/** The canonical text: a dotted quad, or RFC 5952 (lower case, the longest run of zero groups as
 * '::', never a dotted quad: ::ffff:a01:203). */
export function formatAddr(a: Addr): string {
  return a.family === 4 ? formatIp4(Number(a.value)) : formatIp6(a.value);
}

/** "10.1.0.0/16", "fd00::2/64": an address, '/', and 0 to 32 (IPv4) or 128 (IPv6) in at most
 * three digits; the host bits are kept. Undefined when it is not one. */
export function parseCidr(s: unknown): Cidr | undefined {
  if (typeof s !== 'string') return undefined;
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const a = parseAddr(s.slice(0, slash));
  const len = s.slice(slash + 1);
  if (!a || !/^\d{1,3}$/.test(len)) return undefined;
  const prefix = Number(len);
  return prefix > familyBits(a.family) ? undefined : { family: a.family, value: a.value, prefix };
}

export const formatCidr = (c: Cidr): string => `${formatAddr(c)}/${c.prefix}`;

/** The bits of the network part, as a value of the family. */
export function prefixMask(family: Family, prefix: number): bigint {
  const bits = familyBits(family);
  const all = (1n << BigInt(bits)) - 1n;
  return (all >> BigInt(bits - prefix)) << BigInt(bits - prefix);
}

/** Whether the address is the network address of its prefix (no host bits set). */
export const isNetwork = (c: Cidr): boolean => (c.value & prefixMask(c.family, c.prefix)) === c.value;

/** How many addresses the prefix holds. */
export const cidrSize = (c: Cidr): bigint => 1n << BigInt(familyBits(c.family) - c.prefix);

/** The last address of the prefix (an IPv4 subnet's broadcast address). */
export const cidrLast = (c: Cidr): bigint => c.value | (cidrSize(c) - 1n);

/** Whether the address is inside the prefix (of the same family, the same network bits). */
export function contains(c: Cidr, a: Addr): boolean {
  if (c.family !== a.family) return false;
  const shift = BigInt(familyBits(c.family) - c.prefix);
  return c.value >> shift === a.value >> shift;
}

/** Whether two prefixes share an address: the shorter one holds the other. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && (a.prefix <= b.prefix ? contains(a, b) : contains(b, a));
}

/** The address in network byte order, as netlink carries it (struct in_addr, in6_addr). */
export function addrBytes(a: Addr): Buffer {
  const out = Buffer.alloc(a.family === 4 ? 4 : 16);
  writeAddr(a, out, 0);
  return out;
}

/** Writes the address at `at` in network byte order: 4 bytes or 16. */
export function writeAddr(a: Addr, buf: Buffer, at: number): void {
  if (a.family === 4) {
    buf.writeUInt32BE(Number(a.value), at);
  } else {
    buf.writeBigUInt64BE(a.value >> 64n, at);
    buf.writeBigUInt64BE(a.value & 0xffff_ffff_ffff_ffffn, at + 8);
  }
}

/** The address in `b`, network byte order: 4 bytes are IPv4, else the first 16 are IPv6
 * (a RangeError when there are fewer). */
export function addrFromBytes(b: Buffer): Addr {
  if (b.length === 4) return { family: 4, value: BigInt(b.readUInt32BE(0)) };
  return { family: 6, value: (b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8) };
}

/** "02:42:ac:11:00:02" (either case) as its 6 bytes; undefined when it is not a MAC address. */
export function macBytes(s: unknown): Buffer | undefined {
  if (typeof s !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(s)) return undefined;
  return Buffer.from(s.split(':').map((x) => Number.parseInt(x, 16)));
}

/** Lower-case hex pairs joined by ':'. */
export const formatMac = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
