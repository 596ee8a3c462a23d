import type { RawQuery } from './raw-query.js';
import { encodeName, type Rr } from './rr.js';

// Answers of the name table, encoded once when first asked (and again when the table changes)
// and copied per query: the reply is the query's own header and question (so the ID and the
// asker's case come back as sent, RFC 4343), then these records, whose owner is a pointer to
// the question (0xC00C, RFC 1035 4.1.4).

/** RFC 6891 6.2.5: the payload size we advertise; 1232 avoids IP fragmentation (DNS flag day 2020). */
export const OUR_UDP_SIZE = 1232;
const OPT_LEN = 11;
/** Rotations kept for round robin; more records than this get shuffled orders instead. */
const MAX_ROTATIONS = 16;

export interface Prepared {
  readonly rcode: number;
  /**
   * The reply's flags less the asker's RD and CD: QR, AA=0 (not authoritative, as Docker's), the
   * RCODE, and RA on answers only (NOERROR), as Docker sets it; the table's NOTIMP has none.
   */
  readonly flags: number;
  /** One encoding per rotation of the answers: answer RRs, then additional RRs. */
  readonly bodies: readonly Buffer[];
  /** Per rotation, where each answer RR ends in the body (to truncate at an RR boundary). */
  readonly ends: readonly (readonly number[])[];
  readonly answers: number;
  readonly additionals: number;
  next: number;
}

function encodeRr(rr: Rr, lname: string): Buffer {
  const owner = rr.owner === lname ? Buffer.from([0xc0, 0x0c]) : encodeName(rr.owner);
  const out = Buffer.alloc(owner.length + 10 + rr.rdata.length);
  owner.copy(out, 0);
  let o = owner.length;
  o = out.writeUInt16BE(rr.type, o);
  o = out.writeUInt16BE(1, o); // class IN
  o = out.writeUInt32BE(rr.ttl, o);
  o = out.writeUInt16BE(rr.rdata.length, o);
  rr.rdata.copy(out, o);
  return out;
}

function orders(n: number): number[][] {
  if (n <= 1) return [[...Array(n).keys()]];
  if (n <= MAX_ROTATIONS) return [...Array(n).keys()].map((r) => [...Array(n).keys()].map((i) => (i + r) % n));
  return [...Array(MAX_ROTATIONS).keys()].map(() => {
    const a = [...Array(n).keys()];
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  });
}

/** Encodes a table answer for the question `lname` (lower-cased, dotted). */
export function prepare(rcode: number, answers: readonly Rr[], additionals: readonly Rr[], lname: string): Prepared {
  const enc = answers.map((rr) => encodeRr(rr, lname));
  const extra = Buffer.concat(additionals.map((rr) => encodeRr(rr, lname)));
  const bodies: Buffer[] = [];
  const ends: number[][] = [];
  // Cyclic rotations: each record comes first in turn, for clients that take the first.
  for (const order of orders(enc.length)) {
    const parts = order.map((i) => enc[i]!);
    const e: number[] = [];
    let at = 0;
    for (const p of parts) e.push((at += p.length));
    bodies.push(Buffer.concat([...parts, extra]));
    ends.push(e);
  }
  const flags = 0x8000 | (rcode === 0 ? 0x0080 : 0) | rcode;
  return { rcode, flags, bodies, ends, answers: answers.length, additionals: additionals.length, next: 0 };
}

/**
 * The reply to `packet` (read as `q`) from a prepared answer, within `limit` bytes: past it,
 * whole answer RRs are dropped from the end, the additional section goes, and TC is set so the
 * client retries over TCP (RFC 1035 4.2.1, RFC 2181 section 9).
 */
export function assemble(p: Prepared, packet: Buffer, q: RawQuery, limit: number): Buffer {
  const i = p.next;
  p.next = i + 1 === p.bodies.length ? 0 : i + 1;
  const body = p.bodies[i]!;
  const opt = q.edns ? OPT_LEN : 0;
  let bodyLen = body.length;
  let an = p.answers;
  let ar = p.additionals;
  let tc = 0;
  if (q.qEnd + bodyLen + opt > limit) {
    const ends = p.ends[i]!;
    while (an > 0 && q.qEnd + ends[an - 1]! + opt > limit) an--;
    bodyLen = an > 0 ? ends[an - 1]! : 0;
    ar = 0;
    tc = 0x0200;
  }
  const qEnd = q.qEnd;
  const out = Buffer.allocUnsafe(qEnd + bodyLen + opt);
  // Byte by byte: a header and question are a few dozen bytes, less than Buffer.copy's checks.
  out[0] = packet[0]!;
  out[1] = packet[1]!;
  // p.flags (opcode QUERY, as readQuery let through), RD and CD copied.
  const flags = p.flags | (q.flags & 0x0110) | tc;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  out[4] = 0;
  out[5] = 1;
  out[6] = an >> 8;
  out[7] = an & 0xff;
  out[8] = 0;
  out[9] = 0;
  const arcount = ar + (opt ? 1 : 0);
  out[10] = arcount >> 8;
  out[11] = arcount & 0xff;
  for (let i = 12; i < qEnd; i++) out[i] = packet[i]!;
  out.set(bodyLen === body.length ? body : body.subarray(0, bodyLen), qEnd);
  if (opt) writeOpt(out, qEnd + bodyLen, 0, q.dnssecOk);
  return out;
}

/** An OPT record (RFC 6891 6.1.2): root owner, our UDP size, extended RCODE, version 0, DO. */
export function writeOpt(out: Buffer, o: number, extRcode: number, dnssecOk: boolean): void {
  out[o] = 0;
  out[o + 1] = 0;
  out[o + 2] = 41;
  out[o + 3] = OUR_UDP_SIZE >> 8;
  out[o + 4] = OUR_UDP_SIZE & 0xff;
  out[o + 5] = extRcode;
  out[o + 6] = 0;
  out[o + 7] = dnssecOk ? 0x80 : 0;
  out[o + 8] = 0;
  out[o + 9] = 0;
  out[o + 10] = 0;
}
