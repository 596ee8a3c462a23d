import * as packet from 'dns-packet';
import { DnsError } from './errors.js';

// The one module that uses dns-packet: everything else handles typed messages or, on the hot
// paths, raw bytes (raw-query.ts, prepared.ts, upstream/raw-message.ts).

export type Message = packet.Packet;
export type Answer = packet.Answer;
export type Question = packet.Question;

export const FLAGS = {
  QR: 0x8000,
  AA: packet.AUTHORITATIVE_ANSWER,
  TC: packet.TRUNCATED_RESPONSE,
  RD: packet.RECURSION_DESIRED,
  RA: packet.RECURSION_AVAILABLE,
  AD: packet.AUTHENTIC_DATA,
  CD: packet.CHECKING_DISABLED,
};

/** Decodes a whole message; a malformed one throws DNS_MALFORMED. */
export function decode(buf: Buffer): Message {
  try {
    return packet.decode(buf);
  } catch (cause) {
    throw new DnsError('DNS_MALFORMED', `malformed DNS message: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Decodes a message that must be exactly what its header's counts say: a record missing or a byte
 * left over throws DNS_MALFORMED (a reader such as dig warns of both). For tests and tools.
 */
export function decodeExact(buf: Buffer): Message {
  const msg = decode(buf);
  const used = (packet.decode as unknown as { bytes: number }).bytes;
  if (used !== buf.length) throw new DnsError('DNS_MALFORMED', `${buf.length - used} bytes past the message`);
  return msg;
}

export function encode(msg: Message): Buffer {
  return packet.encode(msg);
}

export interface OptInfo {
  udpSize: number;
  version: number;
  flags: number;
}

/**
 * Validates every section of an unusual query and returns its OPT record (undefined if none),
 * or 'formerr': undecodable sections, more than one OPT, or an OPT whose owner is not the root
 * (RFC 6891 6.1.1).
 */
export function inspectAdditional(buf: Buffer): OptInfo | undefined | 'formerr' {
  let msg: Message;
  try {
    msg = packet.decode(buf);
  } catch {
    return 'formerr';
  }
  const opts = (msg.additionals ?? []).filter((a) => a.type === 'OPT') as packet.OptAnswer[];
  if (opts.length === 0) return undefined;
  const opt = opts[0]!;
  if (opts.length > 1 || opt.name !== '.') return 'formerr';
  return { udpSize: opt.udpPayloadSize, version: opt.ednsVersion, flags: opt.flags };
}

/** A query as a client sends it; for tests and tools. */
export function encodeQuery(
  name: string,
  type: string,
  opts: { id?: number; rd?: boolean; edns?: number; class?: string } = {},
): Buffer {
  return packet.encode({
    type: 'query',
    id: opts.id ?? 1,
    flags: opts.rd === false ? 0 : packet.RECURSION_DESIRED,
    questions: [{ name, type: type as packet.RecordType, class: (opts.class ?? 'IN') as packet.RecordClass }],
    additionals:
      opts.edns === undefined
        ? []
        : [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, flags: 0, options: [] } as unknown as packet.Answer],
  });
}

/** `A 10.0.0.2`-style lines of a message's answers; for tests and diagnostics. */
export function answerLines(msg: Message): string[] {
  return (msg.answers ?? []).map((a) => {
    const d = (a as { data?: unknown }).data;
    if (a.type === 'SRV') {
      const s = d as packet.SrvData;
      return `SRV ${s.priority ?? 0} ${s.weight ?? 0} ${s.port} ${s.target}.`;
    }
    if (a.type === 'PTR') return `PTR ${d}.`;
    return `${a.type} ${typeof d === 'string' ? d : JSON.stringify(d)}`;
  });
}

/** RCODE names (RFC 1035 4.1.1, RFC 6895 2.3). */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 };

export function rcodeName(rcode: number): string {
  return Object.entries(RCODE).find(([, v]) => v === rcode)?.[0] ?? `RCODE${rcode}`;
}
