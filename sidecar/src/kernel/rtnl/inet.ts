// IP literals and MACs to and from the bytes netlink carries (network order, as in
// struct in_addr / in6_addr), and CIDR parsing for the kernel layer's arguments.
import net from 'node:net';
import { SidecarError } from '../../errors.js';

export interface Prefix {
  family: 4 | 6;
  /** The address as written (an interface address keeps its host bits: 10.0.0.2/24). */
  address: string;
  bytes: Buffer;
  length: number;
}

function invalid(what: string, s: string): SidecarError {
  return new SidecarError('SIDECAR_INVALID_ARGUMENT', `not ${what}: ${JSON.stringify(s)}`);
}

export function ipBytes(s: string): Buffer {
  const family = net.isIP(s);
  if (family === 4) return Buffer.from(s.split('.').map(Number));
  if (family !== 6) throw invalid('an IP address', s);
  // Expand an embedded IPv4 tail (::ffff:1.2.3.4) into two groups, then the '::'.
  let text = s.toLowerCase().replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipBytes(v4[1]!);
    text = `${text.slice(0, -v4[1]!.length)}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return out;
}

/** RFC 5952 text: lower case, the longest run of two or more zero groups as '::'. */
export function formatIp(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const g = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** "10.0.0.2/24", "fd00::2/64"; a bare address is a host prefix (/32, /128). */
export function parsePrefix(s: string): Prefix {
  const [address = '', len, extra] = s.split('/');
  const family = net.isIP(address);
  if ((family !== 4 && family !== 6) || extra !== undefined) throw invalid('a CIDR', s);
  const max = family === 4 ? 32 : 128;
  const length = len === undefined ? max : Number(len);
  if (!/^\d+$/.test(len ?? `${max}`) || length > max) throw invalid('a CIDR', s);
  return { family, address, bytes: ipBytes(address), length };
}

export function macBytes(s: string): Buffer {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(s)) throw invalid('a MAC address', s);
  return Buffer.from(s.split(':').map((x) => Number.parseInt(x, 16)));
}

export const formatMac = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
