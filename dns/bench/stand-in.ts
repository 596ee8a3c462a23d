// A responder that only looks up a precomputed reply per question: no parsing beyond the
// question, no name table, no chain. Served through a transport, it shows what the transport
// alone costs, a lower bound for any server on it.
import type { PacketHandler } from '../src/transport.js';
import type { BenchName } from './names.js';

const TTL = 600;

function wireName(name: string): Buffer {
  const parts = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}

/** Answers type A, class IN for `names`; drops everything else. */
export function standIn(names: BenchName[]): PacketHandler {
  const replies = new Map<string, Buffer>();
  for (const { name, address } of names) {
    const qname = wireName(name.toLowerCase());
    const header = Buffer.alloc(12);
    header.writeUInt16BE(0x8400, 2); // QR, AA (RFC 1035 4.1.1); RD is copied from the query
    header.writeUInt16BE(1, 4); // QDCOUNT
    header.writeUInt16BE(1, 6); // ANCOUNT
    const answer = Buffer.alloc(16);
    answer.writeUInt16BE(0xc00c, 0); // RFC 1035 4.1.4: a pointer to the question's name
    answer.writeUInt16BE(1, 2); // TYPE A
    answer.writeUInt16BE(1, 4); // CLASS IN
    answer.writeUInt32BE(TTL, 6);
    answer.writeUInt16BE(4, 10);
    Buffer.from(address.split('.').map(Number)).copy(answer, 12);
    const question = Buffer.from([0, 1, 0, 1]);
    replies.set(qname.toString('latin1'), Buffer.concat([header, qname, question, answer]));
  }
  return (packet) => {
    // RFC 1035 4.1.1: a query (QR clear) with one question.
    if (packet.length < 17 || packet[2]! & 0x80 || packet.readUInt16BE(4) !== 1) return undefined;
    let i = 12;
    while (i < packet.length && packet[i] !== 0) i += packet[i]! + 1;
    if (i + 5 > packet.length || packet.readUInt32BE(i + 1) !== 0x00010001) return undefined;
    const reply = replies.get(packet.toString('latin1', 12, i + 1).toLowerCase());
    if (!reply) return undefined;
    const out = Buffer.allocUnsafe(reply.length);
    reply.copy(out);
    out[0] = packet[0]!; // the query's ID
    out[1] = packet[1]!;
    out[2] = 0x84 | (packet[2]! & 0x01); // QR, AA, and the query's RD
    return out;
  };
}
