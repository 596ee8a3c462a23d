import { DnsError } from '../errors.js';

// Upstream replies are relayed as received, not re-encoded, so that every record type (known to
// dns-packet or not) and every byte of rdata passes through unchanged. This walker finds what the
// server must touch: the question's end, each RR's TTL, the OPT record, the SOA of a negative answer.

export interface UpstreamMessage {
  /** The message with its OPT record removed (header counts adjusted). */
  buf: Buffer;
  /** Where the question ends (12 + name + 4). */
  qEnd: number;
  rcode: number;
  /** Header flags as the upstream sent them. */
  flags: number;
  /** Offsets of every TTL field in buf, to age cached answers. */
  ttlOffsets: number[];
  /** Offsets of owner names written out in full that are the question's name (to echo the asker's case). */
  qnameOwners: number[];
  /** How long the answer may be cached, in seconds (0: not at all). */
  ttl: number;
}

/** Skips a name (labels, or a pointer ending it); RFC 1035 4.1.4. Returns the offset after it. */
export function skipName(buf: Buffer, o: number): number {
  for (let guard = 0; guard < 128; guard++) {
    if (o >= buf.length) break;
    const len = buf[o]!;
    if (len === 0) return o + 1;
    if ((len & 0xc0) === 0xc0) {
      if (o + 2 > buf.length) break;
      return o + 2;
    }
    if (len & 0xc0) break; // RFC 6891 section 5: extended label types are obsolete
    o += len + 1;
  }
  throw new DnsError('DNS_MALFORMED', 'bad name in message');
}

const OPT = 41;
const SOA = 6;

/**
 * Parses an upstream reply whose question ends at qEnd. Throws DNS_MALFORMED if a record runs
 * past the end. The cache TTL: the least TTL of the answers, or for a negative answer
 * (NXDOMAIN, or NOERROR with no answer) min(SOA TTL, SOA MINIMUM) per RFC 2308 section 5;
 * 0 (not cached) without an SOA, and for anything else.
 */
export function parseUpstream(src: Buffer, qEnd: number): UpstreamMessage {
  const counts = [src.readUInt16BE(6), src.readUInt16BE(8), src.readUInt16BE(10)];
  const rcode = src[3]! & 0x0f;
  const ttlOffsets: number[] = [];
  const qnameOwners: number[] = [];
  let minAnswerTtl = Number.POSITIVE_INFINITY;
  let soaTtl = -1;
  let o = qEnd;
  let optAt = -1;
  let kept = [0, 0, 0];
  for (let section = 0; section < 3; section++) {
    for (let i = 0; i < counts[section]!; i++) {
      const start = o;
      o = skipName(src, o);
      if (o + 10 > src.length) throw new DnsError('DNS_MALFORMED', 'record header past the end');
      const type = src.readUInt16BE(o);
      const ttl = src.readUInt32BE(o + 4);
      const rdEnd = o + 10 + src.readUInt16BE(o + 8);
      if (rdEnd > src.length) throw new DnsError('DNS_MALFORMED', 'rdata past the end');
      if (type === OPT && section === 2) {
        if (optAt < 0) optAt = start;
      } else if (optAt < 0) {
        // Records after an OPT are dropped with it: their compression pointers may point past it.
        ttlOffsets.push(o + 4);
        if (sameName(src, start, qEnd)) qnameOwners.push(start);
        kept[section]!++;
        if (section === 0) minAnswerTtl = Math.min(minAnswerTtl, ttl);
        if (section === 1 && type === SOA && rdEnd - 20 >= o + 10) {
          soaTtl = Math.min(ttl, src.readUInt32BE(rdEnd - 4));
        }
      }
      o = rdEnd;
    }
  }
  if (optAt < 0) kept = counts.slice();
  const buf = Buffer.from(optAt < 0 ? src.subarray(0, o) : src.subarray(0, optAt));
  buf.writeUInt16BE(kept[0]!, 6);
  buf.writeUInt16BE(kept[1]!, 8);
  buf.writeUInt16BE(kept[2]!, 10);
  let ttl = 0;
  const truncated = (src[2]! & 0x02) !== 0;
  if (!truncated && rcode === 0 && kept[0]! > 0) ttl = minAnswerTtl;
  else if (!truncated && (rcode === 3 || (rcode === 0 && kept[0] === 0)) && soaTtl >= 0) ttl = soaTtl;
  return { buf, qEnd, rcode, flags: src.readUInt16BE(2), ttlOffsets, qnameOwners, ttl };
}

/** Whether the name at `at` is the question's name (at 12), written out in full; RFC 4343 case-blind. */
function sameName(buf: Buffer, at: number, qEnd: number): boolean {
  const len = qEnd - 4 - 12;
  if (at + len > buf.length) return false;
  for (let i = 0; i < len; i++) {
    let a = buf[at + i]!;
    let b = buf[12 + i]!;
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  return true;
}
