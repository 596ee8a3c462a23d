// Netlink framing shared by the IPVS codec: struct nlmsghdr, struct genlmsghdr and attributes
// (include/uapi/linux/netlink.h, genetlink.h). Netlink integers are in host byte order; every
// machine cnmd runs on is little-endian (x86-64, arm64), so LE is written here.

// include/uapi/linux/netlink.h
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300; // NLM_F_ROOT | NLM_F_MATCH
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = ~(0x8000 | 0x4000); // NLA_F_NESTED | NLA_F_NET_BYTEORDER
const NLMSG_HDRLEN = 16;
const GENL_HDRLEN = 4; // struct genlmsghdr
const NLA_HDRLEN = 4;

export const align4 = (n: number): number => (n + 3) & ~3;

/** One netlink message: struct nlmsghdr and its payload. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  payload: Buffer;
}

// Buffers here come from allocUnsafe (Node's shared pool) with their padding zeroed: Buffer.alloc
// makes an ArrayBuffer of its own each time, and a full sync builds some 800,000 attributes.

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

/** An attribute of `size` payload bytes, its header written and its padding zeroed. */
function header(type: number, size: number): Buffer {
  const len = NLA_HDRLEN + size;
  const out = Buffer.allocUnsafe(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  out.fill(0, len);
  return out;
}

export function attr(type: number, payload: Buffer): Buffer {
  const out = header(type, payload.length);
  payload.copy(out, NLA_HDRLEN);
  return out;
}

export const nested = (type: number, children: Buffer[]): Buffer => attr(type | NLA_F_NESTED, Buffer.concat(children));

export function u16(type: number, v: number): Buffer {
  const out = header(type, 2);
  out.writeUInt16LE(v, NLA_HDRLEN);
  return out;
}

export function u16be(type: number, v: number): Buffer {
  const out = header(type, 2);
  out.writeUInt16BE(v, NLA_HDRLEN);
  return out;
}

export function u32(type: number, v: number): Buffer {
  const out = header(type, 4);
  out.writeUInt32LE(v >>> 0, NLA_HDRLEN);
  return out;
}

/**
 * Attributes written one after another into one buffer (zeroed, so padding is), for the
 * messages sent by the ten thousand: one allocation instead of one per attribute.
 */
export class AttrWriter {
  readonly #buf: Buffer;
  #off = 0;

  constructor(size: number) {
    this.#buf = Buffer.allocUnsafe(size).fill(0);
  }

  #put(type: number, size: number): number {
    this.#buf.writeUInt16LE(NLA_HDRLEN + size, this.#off);
    this.#buf.writeUInt16LE(type, this.#off + 2);
    const at = this.#off + NLA_HDRLEN;
    this.#off = at + align4(size);
    return at;
  }

  u8(type: number, v: number): this {
    this.#buf.writeUInt8(v, this.#put(type, 1));
    return this;
  }
  u16(type: number, v: number): this {
    this.#buf.writeUInt16LE(v, this.#put(type, 2));
    return this;
  }
  u16be(type: number, v: number): this {
    this.#buf.writeUInt16BE(v, this.#put(type, 2));
    return this;
  }
  u32(type: number, v: number): this {
    this.#buf.writeUInt32LE(v >>> 0, this.#put(type, 4));
    return this;
  }
  /** `size` bytes that `fill` writes at the offset it is given. */
  bytes(type: number, size: number, fill: (buf: Buffer, at: number) => void): this {
    fill(this.#buf, this.#put(type, size));
    return this;
  }
  nested(type: number, body: (w: this) => void): this {
    const start = this.#off;
    this.#off += NLA_HDRLEN;
    body(this);
    this.#buf.writeUInt16LE(this.#off - start, start);
    this.#buf.writeUInt16LE(type | NLA_F_NESTED, start + 2);
    return this;
  }
  done(): Buffer {
    return this.#buf.subarray(0, this.#off);
  }
}

/** A NUL-terminated string, as nla_put_string writes it. */
export const str = (type: number, s: string): Buffer => attr(type, Buffer.from(`${s}\0`));

export function parseAttrs(buf: Buffer, offset = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  while (offset + NLA_HDRLEN <= buf.length) {
    const len = buf.readUInt16LE(offset);
    if (len < NLA_HDRLEN || offset + len > buf.length) break;
    out.set(buf.readUInt16LE(offset + 2) & NLA_TYPE_MASK, buf.subarray(offset + NLA_HDRLEN, offset + len));
    offset += align4(len);
  }
  return out;
}

export const readStr = (b: Buffer | undefined): string | undefined =>
  b === undefined ? undefined : b.toString('utf8', 0, b.indexOf(0) < 0 ? b.length : b.indexOf(0));
export const readU16 = (b: Buffer | undefined): number | undefined =>
  b && b.length >= 2 ? b.readUInt16LE(0) : undefined;
export const readU32 = (b: Buffer | undefined): number | undefined =>
  b && b.length >= 4 ? b.readUInt32LE(0) : undefined;
