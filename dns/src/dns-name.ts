import { isIP } from 'node:net';
import { DnsError } from './errors.js';

// Names as the name table holds them: dotted, no trailing dot, original case kept for display.
// Lookups use the lower-cased form; only ASCII letters fold (RFC 4343 section 3).

const LABEL = /^[A-Za-z0-9_-]{1,63}$/;

/** A name the table may hold (container names, aliases, hostnames, services), or throws. */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== 'string') throw new DnsError('DNS_INVALID_NAME', `${what} must be a string`);
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  // RFC 1035 section 2.3.4: labels of 63 octets or less, names of 255 octets or less on the wire.
  if (n.length === 0 || n.length > 253 || !n.split('.').every((l) => LABEL.test(l))) {
    throw new DnsError('DNS_INVALID_NAME', `${what} ${JSON.stringify(name)} is not a valid DNS name`);
  }
  return n;
}

/** ASCII-only lower case (RFC 4343): bytes above 0x7f are not letters to DNS. */
export function lower(name: string): string {
  return /[A-Z]/.test(name) ? name.replace(/[A-Z]+/g, (s) => s.toLowerCase()) : name;
}

/**
 * The lookup key of a name: its wire form (length-prefixed labels, no root byte) as a latin1
 * string, lower-cased. The fast path builds the same key straight from a query's bytes.
 */
export function wireKey(lname: string): string {
  if (lname === '') return '';
  let key = '';
  for (const label of lname.split('.')) key += String.fromCharCode(label.length) + label;
  return key;
}

/** The dotted name of a wire key; undefined if a label holds a dot (no table name does). */
export function fromWireKey(key: string): string | undefined {
  const labels: string[] = [];
  for (let i = 0; i < key.length; ) {
    const len = key.charCodeAt(i);
    const label = key.slice(i + 1, i + 1 + len);
    if (label.includes('.')) return undefined;
    labels.push(label);
    i += len + 1;
  }
  return labels.join('.');
}

/** 4 or 16 bytes of an IP address, or throws. */
export function addressBytes(address: unknown): Buffer {
  const family = typeof address === 'string' ? isIP(address) : 0;
  if (family === 4) return Buffer.from((address as string).split('.').map(Number));
  if (family === 6) return ipv6Bytes(address as string);
  throw new DnsError('DNS_INVALID_ADDRESS', `${JSON.stringify(address)} is not an IP address`);
}

function ipv6Bytes(text: string): Buffer {
  const out = Buffer.alloc(16);
  let s = text.toLowerCase();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const dot = s.lastIndexOf('.');
  if (dot >= 0) {
    const colon = s.lastIndexOf(':');
    const v4 = s
      .slice(colon + 1)
      .split('.')
      .map(Number);
    s = `${s.slice(0, colon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return out;
}

/** The canonical text of an address (for deduplication and display). */
export function formatAddress(bytes: Buffer): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // RFC 5952 section 4.2.3: the longest run of zero groups (two or more) becomes '::'.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** The reverse-lookup name of an address: in-addr.arpa (RFC 1035 3.5) or ip6.arpa (RFC 3596 2.5). */
export function ptrName(bytes: Buffer): string {
  if (bytes.length === 4) return `${[...bytes].reverse().join('.')}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) nibbles.push((bytes[i]! & 0xf).toString(16), (bytes[i]! >> 4).toString(16));
  return `${nibbles.join('.')}.ip6.arpa`;
}
