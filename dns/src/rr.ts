import { formatAddress } from './dns-name.js';
import type { Address } from './table/types.js';

// Resource records the name table answers with, rdata already in wire form so that answers can
// be prepared once and copied per query.

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 };
export const CLASS_IN = 1;

export interface Rr {
  /** Owner name; when it is the question's (lower-cased) name it is written as a pointer to it. */
  owner: string;
  type: number;
  ttl: number;
  rdata: Buffer;
}

/** A name in uncompressed wire form (RFC 1035 3.1), root byte included. */
export function encodeName(name: string): Buffer {
  const labels = name === '' ? [] : name.split('.');
  const out = Buffer.alloc(labels.reduce((n, l) => n + 1 + Buffer.byteLength(l, 'latin1'), 1));
  let o = 0;
  for (const l of labels) {
    out[o++] = l.length;
    o += out.write(l, o, 'latin1');
  }
  return out;
}

export function addressRr(owner: string, a: Address, ttl: number): Rr {
  return { owner, type: a.bytes.length === 4 ? TYPE.A : TYPE.AAAA, ttl, rdata: a.bytes };
}

export function ptrRr(owner: string, target: string, ttl: number): Rr {
  return { owner, type: TYPE.PTR, ttl, rdata: encodeName(target) };
}

/** RFC 2782: priority and weight 0 (all targets equal, as libnetwork answers). */
export function srvRr(owner: string, port: number, target: string, ttl: number): Rr {
  const name = encodeName(target);
  const rdata = Buffer.alloc(6 + name.length);
  rdata.writeUInt16BE(port, 4);
  name.copy(rdata, 6);
  return { owner, type: TYPE.SRV, ttl, rdata };
}

function decodeName(buf: Buffer, o: number): string {
  const labels: string[] = [];
  while (buf[o]) {
    labels.push(buf.toString('latin1', o + 1, o + 1 + buf[o]!));
    o += buf[o]! + 1;
  }
  return labels.join('.');
}

/** `A 10.0.0.2`, `SRV 0 0 80 web.1.x.`: for tests and diagnostics. */
export function rrText(rr: Rr): string {
  switch (rr.type) {
    case TYPE.A:
      return `A ${formatAddress(rr.rdata)}`;
    case TYPE.AAAA:
      return `AAAA ${formatAddress(rr.rdata)}`;
    case TYPE.PTR:
      return `PTR ${decodeName(rr.rdata, 0)}.`;
    case TYPE.SRV:
      return `SRV 0 0 ${rr.rdata.readUInt16BE(4)} ${decodeName(rr.rdata, 6)}.`;
    default:
      return `TYPE${rr.type} ${rr.rdata.toString('hex')}`;
  }
}
