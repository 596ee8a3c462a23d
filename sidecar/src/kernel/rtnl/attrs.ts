// Netlink attributes (TLVs), include/uapi/linux/netlink.h: struct nlattr { u16 nla_len;
// u16 nla_type; } followed by the payload, each attribute padded to 4 bytes (NLA_ALIGNTO).
// Netlink integers are in host byte order; every machine cnmd runs on is little-endian
// (x86-64, arm64), so LE is written here. Ports and addresses inside payloads are in network
// order where the kernel says so (IFLA_VXLAN_PORT).

/** include/uapi/linux/netlink.h: the payload holds attributes. */
export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = ~(0x8000 | 0x4000);
const NLA_HDRLEN = 4;

export const align4 = (n: number): number => (n + 3) & ~3;

export type Attr = [type: number, payload: Buffer];

export function attr(type: number, payload: Buffer): Buffer {
  const len = NLA_HDRLEN + payload.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, NLA_HDRLEN);
  return out;
}

export const nested = (type: number, ...children: Buffer[]): Buffer =>
  attr(type | NLA_F_NESTED, Buffer.concat(children));

export const u8 = (type: number, v: number): Buffer => attr(type, Buffer.from([v]));

export function u16be(type: number, v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return attr(type, b);
}

export function u32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return attr(type, b);
}

export function s32(type: number, v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return attr(type, b);
}

/** A NUL-terminated string (IFLA_IFNAME, IFLA_INFO_KIND). */
export const str = (type: number, s: string): Buffer => attr(type, Buffer.from(`${s}\0`));

/** Splits a run of attributes; a truncated one ends the run (the kernel never sends one). */
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

export const readU32 = (b: Buffer | undefined): number | undefined =>
  b && b.length >= 4 ? b.readUInt32LE(0) : undefined;
