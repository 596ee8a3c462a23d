// Netlink attributes (TLVs), include/uapi/linux/netlink.h: struct nlattr { u16 nla_len;
// u16 nla_type; } followed by the payload, each attribute padded to 4 bytes (NLA_ALIGNTO);
// nla_len counts the header and the payload, not the padding. For lb's IPVS codec (generic
// netlink) and the sidecar's rtnetlink. Netlink integers are in host byte order; every machine
// cnmd runs on is little-endian (x86-64, arm64), so LE is written here. Ports and addresses
// inside payloads are in network order where the kernel says so (u16be).

/** include/uapi/linux/netlink.h: the payload holds attributes. */
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = ~(0x8000 | 0x4000); // NLA_F_NESTED | NLA_F_NET_BYTEORDER
const NLA_HDRLEN = 4;

/** NLA_ALIGN, and NLMSG_ALIGN too: both align to 4 bytes. */
export const align4 = (n: number): number => (n + 3) & ~3;

// Buffers here come from allocUnsafe (Node's shared pool) with their padding zeroed: Buffer.alloc
// makes an ArrayBuffer of its own each time, and lb's IPVS full sync builds some 800,000 attributes.

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

/** An attribute whose payload is `children`, flagged NLA_F_NESTED. */
export const nested = (type: number, ...children: Buffer[]): Buffer =>
  attr(type | NLA_F_NESTED, Buffer.concat(children));

export function u8(type: number, v: number): Buffer {
  const out = header(type, 1);
  out.writeUInt8(v, NLA_HDRLEN);
  return out;
}

export function u16(type: number, v: number): Buffer {
  const out = header(type, 2);
  out.writeUInt16LE(v, NLA_HDRLEN);
  return out;
}

/** In network byte order (IFLA_VXLAN_PORT, IPVS_DEST_ATTR_PORT). */
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

/** A NUL-terminated string, as nla_put_string writes it (IFLA_IFNAME, IPVS_SVC_ATTR_SCHED_NAME). */
export const str = (type: number, s: string): Buffer => attr(type, Buffer.from(`${s}\0`));

/**
 * Attributes written one after another into one buffer (zeroed, so padding is), for the
 * messages sent by the ten thousand: one allocation instead of one per attribute. `size` must
 * hold them all.
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

/** The attributes of a run by type (flags masked off), each payload a view of `buf`. A
 * truncated attribute ends the run (the kernel never sends one). */
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

/** A string attribute, up to its NUL. */
export const readStr = (b: Buffer | undefined): string | undefined =>
  b === undefined ? undefined : b.toString('utf8', 0, b.indexOf(0) < 0 ? b.length : b.indexOf(0));
export const readU16 = (b: Buffer | undefined): number | undefined =>
  b && b.length >= 2 ? b.readUInt16LE(0) : undefined;
export const readU32 = (b: Buffer | undefined): number | undefined =>
  b && b.length >= 4 ? b.readUInt32LE(0) : undefined;
