import { writeOpt } from './prepared.js';
import type { RawQuery } from './raw-query.js';
import type { UpstreamMessage } from './upstream/raw-message.js';

// Replies that do not come from prepared table answers: errors the server makes itself, and
// upstream (or cached) answers relayed to the asker.

const OPT_LEN = 11;

/**
 * A reply with no records that the server makes itself: its errors (FORMERR, NOTIMP, REFUSED,
 * SERVFAIL, BADVERS) and the ndots rule's empty NOERROR. The query's ID, opcode, RD and CD; RA only
 * on NOERROR, since Docker sets RA on its answers and never on its errors (libnetwork
 * createRespMsg beside miekg/dns SetRcode); ANCOUNT and NSCOUNT 0 whatever the query's header said
 * (RFC 1035 4.1.1: the counts describe this message); the question when it could be read (q); an
 * OPT record when the query had one (RFC 6891 7: BADVERS needs it), and no other record.
 */
export function emptyReply(packet: Buffer, q: RawQuery | undefined, rcode: number): Buffer {
  const qEnd = q ? q.qEnd : 12;
  const opt = q?.edns ? OPT_LEN : 0;
  const out = Buffer.alloc(qEnd + opt);
  packet.copy(out, 0, 0, qEnd);
  // QR, the query's opcode (0x7800), RD (0x0100) and CD (0x0010); AA, TC, Z and AD clear.
  out.writeUInt16BE(0x8000 | (packet.readUInt16BE(2) & 0x7910) | (rcode === 0 ? 0x0080 : 0) | (rcode & 0x0f), 2);
  out.writeUInt16BE(q ? 1 : 0, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(opt ? 1 : 0, 10);
  // RFC 6891 6.1.3: the upper 8 bits of a 12-bit RCODE travel in the OPT record.
  if (opt) writeOpt(out, qEnd, rcode >> 4, q!.dnssecOk);
  return out;
}

/**
 * An upstream's answer as the asker's reply: the asker's ID and question (its case kept), the
 * upstream's records with their TTLs lowered by `age` seconds (cache hits), our OPT record for
 * an EDNS query. Larger than `limit`: header and question only, with TC set (RFC 2181 section
 * 9), so the client asks again over TCP.
 */
export function relayReply(m: UpstreamMessage, age: number, packet: Buffer, q: RawQuery, limit: number): Buffer {
  const opt = q.edns ? OPT_LEN : 0;
  const records = m.buf.length - m.qEnd;
  const fits = q.qEnd + records + opt <= limit;
  const out = Buffer.allocUnsafe(q.qEnd + (fits ? records : 0) + opt);
  packet.copy(out, 0, 0, q.qEnd);
  // Upstream's AA and AD bits and RCODE; the asker's RD and CD.
  const flags = 0x8080 | (m.flags & 0x0420) | (q.flags & 0x0110) | (fits ? 0 : 0x0200) | m.rcode;
  out.writeUInt16BE(flags, 2);
  if (fits) {
    m.buf.copy(out, 6, 6, 12);
    m.buf.copy(out, q.qEnd, m.qEnd);
    const shift = q.qEnd - m.qEnd;
    for (const at of m.qnameOwners) packet.copy(out, at + shift, 12, q.qEnd - 4);
    if (age > 0) {
      for (const at of m.ttlOffsets) out.writeUInt32BE(Math.max(0, out.readUInt32BE(at + shift) - age), at + shift);
    }
  } else {
    out.fill(0, 6, 12);
  }
  if (opt) {
    out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
    writeOpt(out, out.length - OPT_LEN, 0, q.dnssecOk);
  }
  return out;
}
