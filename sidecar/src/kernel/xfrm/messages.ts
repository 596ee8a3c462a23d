// XFRM netlink messages (NETLINK_XFRM): IPsec states (SAs) and policies, the fixed structs of
// include/uapi/linux/xfrm.h (offsets checked against the header with offsetof on x86_64) followed
// by attributes. Pure functions, tested byte for byte without privileges.
import { addrBytes, addrFromBytes, attr, formatAddr, parseAddr, parseAttrs } from '@cnmd/netutil';

// include/uapi/linux/xfrm.h: message types.
export const XFRM_MSG_NEWSA = 0x10;
export const XFRM_MSG_DELSA = 0x11;
export const XFRM_MSG_GETSA = 0x12;
export const XFRM_MSG_NEWPOLICY = 0x13;
export const XFRM_MSG_DELPOLICY = 0x14;
export const XFRM_MSG_GETPOLICY = 0x15;
export const XFRM_MSG_UPDPOLICY = 0x19;
export const XFRM_MSG_UPDSA = 0x1a;
// attributes
export const XFRMA_TMPL = 5;
export const XFRMA_SRCADDR = 13;
export const XFRMA_ALG_AEAD = 18;
// values
export const XFRM_MODE_TRANSPORT = 0;
export const XFRM_POLICY_IN = 0;
export const XFRM_POLICY_OUT = 1;
export const XFRM_POLICY_FWD = 2;
export const XFRM_POLICY_ALLOW = 0;
export const XFRM_POLICY_BLOCK = 1;
export const IPPROTO_ESP = 50;
export const IPPROTO_UDP = 17;
const AF_INET = 2;
const XFRM_INF = 0xffffffffffffffffn;

/** AES-GCM with a 128-bit key and 32-bit salt (RFC 4106), a 128-bit ICV: the key is 20 bytes. */
export const AEAD = 'rfc4106(gcm(aes))';

export interface Sa {
  src: string;
  dst: string;
  spi: number;
  reqid: number;
  /** The AEAD key, 20 bytes (16 of AES-128 and 4 of salt); absent in what the kernel lists. */
  key?: Buffer;
}

export type Dir = 'in' | 'out' | 'fwd';

export interface Policy {
  /** An address (a /32) or a prefix (`0.0.0.0/0`: any). */
  src: string;
  dst: string;
  dir: Dir;
  /** UDP packets to this port (the VXLAN port) only. */
  dport: number;
  /** The kernel takes the matching policy of the lowest priority. */
  priority: number;
  /** block: the packets are dropped; otherwise they must be ESP by `tmpl`. */
  action?: 'allow' | 'block';
  /** ESP in transport mode: the SA with this SPI (0: any of the reqid; addresses 0.0.0.0: any). */
  tmpl?: { src: string; dst: string; reqid: number; spi: number };
}

const DIRS: Record<Dir, number> = { in: XFRM_POLICY_IN, out: XFRM_POLICY_OUT, fwd: XFRM_POLICY_FWD };

function ip4(s: string): Buffer {
  const a = parseAddr(s);
  if (a?.family !== 4) throw new RangeError(`${s}: IPv4 only`);
  const b = Buffer.alloc(16); // xfrm_address_t: a union of 16 bytes
  addrBytes(a).copy(b);
  return b;
}

const readIp4 = (b: Buffer, at: number) => formatAddr(addrFromBytes(b.subarray(at, at + 4)));

/** `a.b.c.d` (a /32) or `a.b.c.d/n`: the address bytes and the prefix length. */
function prefixed(s: string): [Buffer, number] {
  const slash = s.indexOf('/');
  if (slash < 0) return [ip4(s), 32];
  const len = Number(s.slice(slash + 1));
  if (!/^\d{1,2}$/.test(s.slice(slash + 1)) || len > 32) throw new RangeError(`${s}: a bad prefix`);
  return [ip4(s.slice(0, slash)), len];
}

const withPrefix = (addr: string, len: number) => (len === 32 ? addr : `${addr}/${len}`);

/** struct xfrm_selector (56): host (or prefix) to host, UDP, to one port. */
function selector(s: { src: string; dst: string; dport: number }): Buffer {
  const b = Buffer.alloc(56);
  const [dst, dlen] = prefixed(s.dst);
  const [src, slen] = prefixed(s.src);
  dst.copy(b, 0);
  src.copy(b, 16);
  b.writeUInt16BE(s.dport, 32);
  b.writeUInt16BE(0xffff, 34); // dport_mask
  b.writeUInt16LE(AF_INET, 40);
  b.writeUInt8(dlen, 42); // prefixlen_d
  b.writeUInt8(slen, 43); // prefixlen_s
  b.writeUInt8(IPPROTO_UDP, 44);
  return b;
}

/** struct xfrm_lifetime_cfg (64): no limits. */
function lifetimes(): Buffer {
  const b = Buffer.alloc(64);
  for (let i = 0; i < 4; i++) b.writeBigUInt64LE(XFRM_INF, i * 8); // byte and packet limits
  return b;
}

/** XFRM_MSG_NEWSA/UPDSA body: struct xfrm_usersa_info (224) and the AEAD algorithm. */
export function saInfo(sa: Sa): Buffer {
  if (sa.key?.length !== 20) throw new RangeError('an rfc4106(gcm(aes)) key is 20 bytes');
  const b = Buffer.alloc(224);
  // sel (0..56): left empty, as `ip xfrm state add` does for transport mode
  b.writeUInt16LE(AF_INET, 40);
  ip4(sa.dst).copy(b, 56); // id.daddr
  b.writeUInt32BE(sa.spi, 72); // id.spi
  b.writeUInt8(IPPROTO_ESP, 76); // id.proto
  ip4(sa.src).copy(b, 80); // saddr
  lifetimes().copy(b, 96);
  b.writeUInt32LE(sa.reqid, 208);
  b.writeUInt16LE(AF_INET, 212);
  b.writeUInt8(XFRM_MODE_TRANSPORT, 214);
  b.writeUInt8(32, 215); // replay_window
  const alg = Buffer.alloc(72 + sa.key.length); // struct xfrm_algo_aead
  alg.write(AEAD, 0, 'ascii');
  alg.writeUInt32LE(sa.key.length * 8, 64);
  alg.writeUInt32LE(128, 68); // ICV bits
  sa.key.copy(alg, 72);
  return Buffer.concat([b, attr(XFRMA_ALG_AEAD, alg)]);
}

/** XFRM_MSG_DELSA body: struct xfrm_usersa_id (24) and the source address. */
export function saId(sa: Pick<Sa, 'src' | 'dst' | 'spi'>): Buffer {
  const b = Buffer.alloc(24);
  ip4(sa.dst).copy(b, 0);
  b.writeUInt32BE(sa.spi, 16);
  b.writeUInt16LE(AF_INET, 20);
  b.writeUInt8(IPPROTO_ESP, 22);
  return Buffer.concat([b, attr(XFRMA_SRCADDR, ip4(sa.src))]);
}

export function parseSa(body: Buffer): Sa {
  return {
    dst: readIp4(body, 56),
    spi: body.readUInt32BE(72),
    src: readIp4(body, 80),
    reqid: body.readUInt32LE(208),
  };
}

/** XFRM_MSG_NEWPOLICY/UPDPOLICY body: struct xfrm_userpolicy_info (168) and its template. */
export function policyInfo(p: Policy): Buffer {
  const b = Buffer.alloc(168);
  selector(p).copy(b, 0);
  lifetimes().copy(b, 56);
  b.writeUInt32LE(p.priority, 152);
  b.writeUInt8(DIRS[p.dir], 160);
  if (p.action === 'block' || !p.tmpl) {
    b.writeUInt8(XFRM_POLICY_BLOCK, 161);
    return b;
  }
  b.writeUInt8(XFRM_POLICY_ALLOW, 161);
  const t = Buffer.alloc(64); // struct xfrm_user_tmpl
  ip4(p.tmpl.dst).copy(t, 0);
  t.writeUInt32BE(p.tmpl.spi, 16);
  t.writeUInt8(IPPROTO_ESP, 20);
  t.writeUInt16LE(AF_INET, 24);
  ip4(p.tmpl.src).copy(t, 28);
  t.writeUInt32LE(p.tmpl.reqid, 44);
  t.writeUInt8(XFRM_MODE_TRANSPORT, 48);
  t.writeUInt32LE(0xffffffff, 52); // aalgos: any
  t.writeUInt32LE(0xffffffff, 56); // ealgos
  t.writeUInt32LE(0xffffffff, 60); // calgos
  return Buffer.concat([b, attr(XFRMA_TMPL, t)]);
}

/** XFRM_MSG_DELPOLICY body: struct xfrm_userpolicy_id (64). */
export function policyId(p: Pick<Policy, 'src' | 'dst' | 'dport' | 'dir'>): Buffer {
  const b = Buffer.alloc(64);
  selector(p).copy(b, 0);
  b.writeUInt8(DIRS[p.dir], 60);
  return b;
}

export function parsePolicy(body: Buffer): Policy | undefined {
  const dirs = Object.entries(DIRS).find(([, n]) => n === body.readUInt8(160));
  if (!dirs || body.readUInt16LE(40) !== AF_INET) return undefined;
  const t = parseAttrs(body, 168).get(XFRMA_TMPL);
  const p: Policy = {
    dst: withPrefix(readIp4(body, 0), body.readUInt8(42)),
    src: withPrefix(readIp4(body, 16), body.readUInt8(43)),
    dport: body.readUInt16BE(32),
    dir: dirs[0] as Dir,
    priority: body.readUInt32LE(152),
  };
  if (body.readUInt8(161) === XFRM_POLICY_BLOCK) p.action = 'block';
  if (t) p.tmpl = { dst: readIp4(t, 0), spi: t.readUInt32BE(16), src: readIp4(t, 28), reqid: t.readUInt32LE(44) };
  return p;
}
