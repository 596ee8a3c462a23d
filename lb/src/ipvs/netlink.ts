// Netlink framing of the IPVS codec: struct nlmsghdr and struct genlmsghdr
// (include/uapi/linux/netlink.h, genetlink.h); the attributes inside are @cnmd/netutil's.
// Netlink integers are in host byte order; every machine cnmd runs on is little-endian
// (x86-64, arm64), so LE is written here.
import { align4, parseAttrs } from '@cnmd/netutil';

// include/uapi/linux/netlink.h
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300; // NLM_F_ROOT | NLM_F_MATCH
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
const NLMSG_HDRLEN = 16;
const GENL_HDRLEN = 4; // struct genlmsghdr

/** One netlink message: struct nlmsghdr and its payload. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  payload: Buffer;
}

// From allocUnsafe (Node's shared pool) with the padding zeroed, as netutil's attributes.
export function encodeNlMessage(m: NlMessage): Buffer {
  const out = Buffer.allocUnsafe(NLMSG_HDRLEN + align4(m.payload.length));
  out.writeUInt32LE(NLMSG_HDRLEN + m.payload.length, 0);
  out.writeUInt16LE(m.type, 4);
  out.writeUInt16LE(m.flags, 6);
  out.writeUInt32LE(m.seq >>> 0, 8);
  out.writeUInt32LE(m.pid >>> 0, 12);
  m.payload.copy(out, NLMSG_HDRLEN);
  out.fill(0, NLMSG_HDRLEN + m.payload.length);
  return out;
}

/** Splits one datagram into its messages; a truncated one ends it (the kernel never sends one). */
export function decodeNlMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) break;
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

export interface GenlMessage {
  cmd: number;
  version: number;
  attrs: Map<number, Buffer>;
}

export function decodeGenl(payload: Buffer): GenlMessage {
  return { cmd: payload.readUInt8(0), version: payload.readUInt8(1), attrs: parseAttrs(payload, GENL_HDRLEN) };
}

/** struct nlmsgerr: the negated errno (0 for an ACK), then the request's header. */
export const nlError = (payload: Buffer): number => -payload.readInt32LE(0);
