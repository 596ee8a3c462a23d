import { inspectAdditional } from './wire.js';

// Reads what the server needs from a query's bytes without decoding the whole message: the
// header, the question (its lower-cased wire name as the lookup key) and the EDNS OPT record.
// Every hit on the name table goes through here and nothing else, so it allocates one string.

export interface RawQuery {
  id: number;
  /** Header flags word (RFC 1035 4.1.1). */
  flags: number;
  /** Lower-cased wire name (see dns-name.ts wireKey). */
  key: string;
  type: number;
  class: number;
  /** Where the question ends: the reply copies bytes 0..qEnd of the query. */
  qEnd: number;
  /** The query carried an OPT record (RFC 6891). */
  edns: boolean;
  /** Requestor's UDP payload size (512 without EDNS). */
  udpSize: number;
  /** DNSSEC OK bit, copied into the reply's OPT (RFC 3225 section 3). */
  dnssecOk: boolean;
  /**
   * Not 0: the query is answered with this RCODE and nothing else, its question echoed: FORMERR
   * for sections after the question that do not decode, BADVERS for an EDNS version above 0
   * (RFC 6891 6.1.3).
   */
  error: number;
}

/** Why a packet gets no ordinary answer, when not even its question can be read. */
export const DROP = 0; // header unreadable, or a response: never answered
export const FORMERR = 1;
export const NOTIMP = 4;
const BADVERS = 16;
export type Problem = typeof DROP | typeof FORMERR | typeof NOTIMP;

/** RFC 1035 2.3.4: names of 255 octets or less (including the length bytes and the root). */
const MAX_NAME = 255;

let scratch = Buffer.allocUnsafe(MAX_NAME);

/** Buffer's own latin1 slicer: toString('latin1', ...) validates its arguments on every call. */
type Latin1 = { latin1Slice(start: number, end: number): string };

const u16 = (p: Buffer, o: number): number => (p[o]! << 8) | p[o + 1]!;

export function readQuery(p: Buffer): RawQuery | Problem {
  // RFC 1035 4.1.1: a 12-byte header. Responses are dropped, never answered, so that two
  // servers cannot keep answering each other's errors.
  if (p.length < 12 || p[2]! & 0x80) return DROP;
  if ((p[2]! & 0x78) !== 0) return NOTIMP; // opcode other than QUERY
  if (p[4] !== 0 || p[5] !== 1) return FORMERR; // QDCOUNT must be 1 (RFC 9619)
  let o = 12;
  let upper = false;
  for (;;) {
    if (o >= p.length) return FORMERR;
    const len = p[o]!;
    if (len === 0) break;
    // RFC 1035 4.1.4: a pointer must point to prior data, and nothing precedes the question
    // but the header; 0x40 and 0x80 label types are not defined (RFC 6891 section 5).
    if (len > 63) return FORMERR;
    const end = o + 1 + len;
    if (end >= p.length || end - 12 >= MAX_NAME) return FORMERR;
    for (let i = o + 1; i < end; i++) {
      const c = p[i]!;
      if (c >= 0x41 && c <= 0x5a) upper = true;
    }
    o = end;
  }
  const nameEnd = o;
  const qEnd = nameEnd + 5;
  if (qEnd > p.length) return FORMERR;
  let key: string;
  if (upper) {
    // RFC 4343: only ASCII letters fold.
    const n = nameEnd - 12;
    if (scratch.length < n) scratch = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) {
      const c = p[12 + i]!;
      scratch[i] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
    }
    key = (scratch as unknown as Latin1).latin1Slice(0, n);
  } else {
    key = (p as unknown as Latin1).latin1Slice(12, nameEnd);
  }
  const q: RawQuery = {
    id: u16(p, 0),
    flags: u16(p, 2),
    key,
    type: u16(p, nameEnd + 1),
    class: u16(p, nameEnd + 3),
    qEnd,
    edns: false,
    udpSize: 512,
    dnssecOk: false,
    error: 0,
  };
  const an = u16(p, 6);
  const ns = u16(p, 8);
  const ar = u16(p, 10);
  if (an === 0 && ns === 0 && ar === 0 && p.length === qEnd) return q;
  // The common EDNS query: one OPT record with the root name right after the question.
  if (an === 0 && ns === 0 && ar === 1 && p.length >= qEnd + 11 && p[qEnd] === 0 && u16(p, qEnd + 1) === 41) {
    if (qEnd + 11 + u16(p, qEnd + 9) === p.length) {
      setOpt(q, u16(p, qEnd + 3), p[qEnd + 6]!, u16(p, qEnd + 7));
      return q;
    }
  }
  // Anything else is rare: decode the rest in full to validate it and find the OPT record. The
  // question has been read by now, so the FORMERR reply can echo it.
  const opt = inspectAdditional(p);
  if (opt === 'formerr') q.error = FORMERR;
  else if (opt) setOpt(q, opt.udpSize, opt.version, opt.flags);
  return q;
}

function setOpt(q: RawQuery, udpSize: number, version: number, flags: number): void {
  q.edns = true;
  // RFC 6891 6.2.5: values below 512 are treated as 512.
  q.udpSize = Math.max(512, udpSize);
  q.dnssecOk = (flags & 0x8000) !== 0;
  if (version !== 0) q.error = BADVERS;
}
