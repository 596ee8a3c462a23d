// The IPVS generic netlink family, encoded and decoded as ipvsadm (libipvs) does it, byte for
// byte (test/ipvs-codec.test.ts compares with messages captured from ipvsadm 1.31 on Linux 6.1).
// Constants: include/uapi/linux/ip_vs.h and genetlink.h. Only what fwmark NAT services need.
import {
  AttrWriter,
  addrFromBytes,
  attr,
  type Family,
  formatAddr,
  nested,
  parseAttrs,
  parseIp4,
  readStr,
  readU16,
  readU32,
  str,
  u16,
  u32,
  writeAddr,
} from '@cnmd/netutil';
import { parseAddr } from '../ip.js';
import { decodeGenl, encodeNlMessage, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST } from './netlink.js';

// include/uapi/linux/genetlink.h: the controller resolves a family's name to its id.
export const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;
const CTRL_VERSION = 1; // libnl's genl_ctrl_resolve sends version 1

// include/uapi/linux/ip_vs.h: IPVS_GENL_NAME, IPVS_GENL_VERSION and enum IPVS_CMD_*
export const IPVS_GENL_NAME = 'IPVS';
const IPVS_GENL_VERSION = 1;
export const IpvsCmd = {
  NEW_SERVICE: 1,
  SET_SERVICE: 2,
  DEL_SERVICE: 3,
  GET_SERVICE: 4,
  NEW_DEST: 5,
  SET_DEST: 6,
  DEL_DEST: 7,
  GET_DEST: 8,
  GET_INFO: 15,
  FLUSH: 17,
} as const;
export type IpvsCmd = (typeof IpvsCmd)[keyof typeof IpvsCmd];

// ip_vs.h: IPVS_CMD_ATTR_*, IPVS_SVC_ATTR_*, IPVS_DEST_ATTR_*, IPVS_INFO_ATTR_*
const CMD_ATTR_SERVICE = 1;
const CMD_ATTR_DEST = 2;
const SVC = { AF: 1, FWMARK: 5, SCHED_NAME: 6, FLAGS: 7, TIMEOUT: 8, NETMASK: 9 } as const;
const DEST = {
  ADDR: 1,
  PORT: 2,
  FWD_METHOD: 3,
  WEIGHT: 4,
  U_THRESH: 5,
  L_THRESH: 6,
  ACTIVE_CONNS: 7,
  INACT_CONNS: 8,
  ADDR_FAMILY: 11,
  TUN_TYPE: 13,
  TUN_PORT: 14,
  TUN_FLAGS: 15,
} as const;
const INFO_ATTR_VERSION = 1;
const INFO_ATTR_CONN_TAB_SIZE = 2;
/** ip_vs.h: IP_VS_CONN_F_MASQ, NAT; the only forwarding method cnmd uses. */
export const IP_VS_CONN_F_MASQ = 0x0000;
const IP_VS_CONN_F_FWD_MASK = 0x0007;
// include/linux/socket.h
const AF_INET = 2;
const AF_INET6 = 10;

/** A firewall-mark virtual service (ip_vs.h, struct ip_vs_service_user with fwmark set). */
export interface IpvsService {
  family: Family;
  fwmark: number;
  /** The scheduler's name, at most IP_VS_SCHEDNAME_MAXLEN - 1 (15) bytes. */
  scheduler: string;
  /** struct ip_vs_flags.flags (IP_VS_SVC_F_*); 0 for cnmd's services. */
  flags?: number;
  /** Persistence timeout in seconds; 0: none. */
  timeout?: number;
}

/** A real server of a service (struct ip_vs_dest_user). */
export interface IpvsDest {
  address: string;
  /** 0 for a fwmark service: the packet keeps its destination port. */
  port: number;
  weight: number;
  /** IP_VS_CONN_F_MASQ unless said otherwise. */
  forward?: number;
  upperThreshold?: number;
  lowerThreshold?: number;
}

export interface IpvsDestStatus extends Required<IpvsDest> {
  family: Family;
  activeConns: number;
  inactiveConns: number;
}

/** One request's genl payload and the netlink type and flags it is sent with. */
export interface GenlRequest {
  /** The netlink message type: the family id (GENL_ID_CTRL for the controller). */
  type: number;
  /** NLM_F_* beyond REQUEST|ACK: NLM_F_DUMP for the GET commands. */
  dump: boolean;
  payload: Buffer;
}

/** The whole message: struct nlmsghdr with REQUEST|ACK (and DUMP), as libnl sends it. */
export const frame = (r: GenlRequest, seq: number, pid: number): Buffer =>
  encodeNlMessage({
    type: r.type,
    flags: NLM_F_REQUEST | NLM_F_ACK | (r.dump ? NLM_F_DUMP : 0),
    seq,
    pid,
    payload: r.payload,
  });

const af = (f: Family): number => (f === 4 ? AF_INET : AF_INET6);

function genl(cmd: number, version: number, attrs: Buffer[]): Buffer {
  // include/uapi/linux/genetlink.h: struct genlmsghdr { u8 cmd; u8 version; u16 reserved; }
  return Buffer.concat([Buffer.from([cmd, version, 0, 0]), ...attrs]);
}

export function getFamilyRequest(name = IPVS_GENL_NAME): GenlRequest {
  return {
    type: GENL_ID_CTRL,
    dump: false,
    payload: genl(CTRL_CMD_GETFAMILY, CTRL_VERSION, [str(CTRL_ATTR_FAMILY_NAME, name)]),
  };
}

/** The family id in a CTRL_CMD_NEWFAMILY reply. */
export function decodeFamilyId(payload: Buffer): number | undefined {
  return readU16(decodeGenl(payload).attrs.get(CTRL_ATTR_FAMILY_ID));
}

/** Every field of a service, as libipvs's ipvs_nl_fill_service_attr writes it (in its order). */
function serviceAttr(s: IpvsService): Buffer {
  const flags = Buffer.alloc(8); // struct ip_vs_flags { u32 flags; u32 mask; }: set every flag
  flags.writeUInt32LE(s.flags ?? 0, 0);
  flags.writeUInt32LE(0xffffffff, 4);
  return nested(
    CMD_ATTR_SERVICE,
    u16(SVC.AF, af(s.family)),
    u32(SVC.FWMARK, s.fwmark),
    str(SVC.SCHED_NAME, s.scheduler),
    attr(SVC.FLAGS, flags),
    u32(SVC.TIMEOUT, s.timeout ?? 0),
    // the persistence netmask: a host's whole address, as ipvsadm defaults it
    u32(SVC.NETMASK, s.family === 4 ? 0xffffffff : 128),
  );
}

/** ip_vs.h: addresses are union nf_inet_addr, 16 bytes, an IPv4 one in the first four. */
function addr16(address: string, out: Buffer, at: number): void {
  // the common case without BigInt: a full sync writes 30,000 of them
  const v4 = parseIp4(address);
  if (v4 >= 0) {
    out.writeUInt32BE(v4, at);
    return;
  }
  const a = parseAddr(address);
  if (!a) throw new TypeError(`not an IP address: ${address}`);
  writeAddr(a, out, at);
}

function readAddr(b: Buffer | undefined, family: Family): string | undefined {
  if (!b || b.length < 16) return undefined;
  return formatAddr(addrFromBytes(family === 4 ? b.subarray(0, 4) : b));
}

/** Every field of a destination, as libipvs's ipvs_nl_fill_dest_attr writes it (in its order):
 * 96 bytes, written in place (a full sync sends 30,000). */
function destAttr(family: Family, d: IpvsDest): Buffer {
  return new AttrWriter(96)
    .nested(CMD_ATTR_DEST, (w) =>
      w
        .u16(DEST.ADDR_FAMILY, af(family))
        .bytes(DEST.ADDR, 16, (buf, at) => addr16(d.address, buf, at))
        .u16be(DEST.PORT, d.port) // network order, as ip_vs.h's comment on struct ip_vs_dest_user says
        .u32(DEST.FWD_METHOD, (d.forward ?? IP_VS_CONN_F_MASQ) & IP_VS_CONN_F_FWD_MASK)
        .u32(DEST.WEIGHT, d.weight)
        .u8(DEST.TUN_TYPE, 0) // IP_VS_CONN_F_TUNNEL_TYPE_IPIP; unused by NAT
        .u16be(DEST.TUN_PORT, 0)
        .u16(DEST.TUN_FLAGS, 0)
        .u32(DEST.U_THRESH, d.upperThreshold ?? 0)
        .u32(DEST.L_THRESH, d.lowerThreshold ?? 0),
    )
    .done();
}

const ipvs = (family: number, cmd: IpvsCmd, attrs: Buffer[], dump = false): GenlRequest => ({
  type: family,
  dump,
  payload: genl(cmd, IPVS_GENL_VERSION, attrs),
});

/** The service as the kernel looks it up for a DEST command (libipvs: no scheduler name); the
 * last one kept, since a service's destinations are sent one after another. */
let lastKey: { family: Family; fwmark: number; attr: Buffer } | undefined;
function serviceKey(s: Pick<IpvsService, 'family' | 'fwmark'>): Buffer {
  if (lastKey?.family !== s.family || lastKey.fwmark !== s.fwmark)
    lastKey = {
      family: s.family,
      fwmark: s.fwmark,
      attr: serviceAttr({ family: s.family, fwmark: s.fwmark, scheduler: '' }),
    };
  return lastKey.attr;
}

/** Requests for the family whose id `family` is (resolved with getFamilyRequest). */
export const ipvsRequests = (family: number) => ({
  getInfo: () => ipvs(family, IpvsCmd.GET_INFO, []),
  flush: () => ipvs(family, IpvsCmd.FLUSH, []),
  newService: (s: IpvsService) => ipvs(family, IpvsCmd.NEW_SERVICE, [serviceAttr(s)]),
  setService: (s: IpvsService) => ipvs(family, IpvsCmd.SET_SERVICE, [serviceAttr(s)]),
  delService: (s: Pick<IpvsService, 'family' | 'fwmark'>) => ipvs(family, IpvsCmd.DEL_SERVICE, [serviceKey(s)]),
  getServices: () => ipvs(family, IpvsCmd.GET_SERVICE, [], true),
  newDest: (s: Pick<IpvsService, 'family' | 'fwmark'>, d: IpvsDest) =>
    ipvs(family, IpvsCmd.NEW_DEST, [serviceKey(s), destAttr(s.family, d)]),
  setDest: (s: Pick<IpvsService, 'family' | 'fwmark'>, d: IpvsDest) =>
    ipvs(family, IpvsCmd.SET_DEST, [serviceKey(s), destAttr(s.family, d)]),
  delDest: (s: Pick<IpvsService, 'family' | 'fwmark'>, d: IpvsDest) =>
    ipvs(family, IpvsCmd.DEL_DEST, [serviceKey(s), destAttr(s.family, d)]),
  // libipvs sends only AF and FWMARK to name the service whose destinations it dumps
  getDests: (s: Pick<IpvsService, 'family' | 'fwmark'>) =>
    ipvs(
      family,
      IpvsCmd.GET_DEST,
      [nested(CMD_ATTR_SERVICE, u16(SVC.AF, af(s.family)), u32(SVC.FWMARK, s.fwmark))],
      true,
    ),
});

const familyOfAf = (n: number | undefined): Family | undefined => (n === AF_INET ? 4 : n === AF_INET6 ? 6 : undefined);

/**
 * A service in a GET_SERVICE reply (IPVS_CMD_NEW_SERVICE carrying IPVS_CMD_ATTR_SERVICE), or
 * undefined for a service that is not keyed by a firewall mark (cnmd leaves those alone).
 */
export function decodeService(payload: Buffer): IpvsService | undefined {
  const nest = decodeGenl(payload).attrs.get(CMD_ATTR_SERVICE);
  if (!nest) return undefined;
  const a = parseAttrs(nest);
  const family = familyOfAf(readU16(a.get(SVC.AF)));
  const fwmark = readU32(a.get(SVC.FWMARK));
  if (!family || !fwmark) return undefined;
  return {
    family,
    fwmark,
    scheduler: readStr(a.get(SVC.SCHED_NAME)) ?? '',
    flags: readU32(a.get(SVC.FLAGS)) ?? 0,
    timeout: readU32(a.get(SVC.TIMEOUT)) ?? 0,
  };
}

/** Names a request for an error message, as the Ipvs methods do: "IPVS_CMD_NEW_DEST fwmark 256 10.0.1.5". */
export function describeRequest(r: GenlRequest): string {
  const g = decodeGenl(r.payload);
  const name = Object.entries(IpvsCmd).find(([, v]) => v === g.cmd)?.[0] ?? `${g.cmd}`;
  const svc = g.attrs.get(CMD_ATTR_SERVICE);
  const fwmark = svc && readU32(parseAttrs(svc).get(SVC.FWMARK));
  const dest = g.attrs.get(CMD_ATTR_DEST);
  const d = dest && parseAttrs(dest);
  const family = d && familyOfAf(readU16(d.get(DEST.ADDR_FAMILY)));
  const address = family && readAddr(d.get(DEST.ADDR), family);
  return [`IPVS_CMD_${name}`, fwmark !== undefined && `fwmark ${fwmark}`, address].filter(Boolean).join(' ');
}

/** A destination in a GET_DEST reply; `family` is the service's, for kernels without ADDR_FAMILY. */
export function decodeDest(payload: Buffer, family: Family): IpvsDestStatus | undefined {
  const nest = decodeGenl(payload).attrs.get(CMD_ATTR_DEST);
  if (!nest) return undefined;
  const a = parseAttrs(nest);
  const fam = familyOfAf(readU16(a.get(DEST.ADDR_FAMILY))) ?? family; // ip_vs.h: since Linux 4.4
  const address = readAddr(a.get(DEST.ADDR), fam);
  const port = a.get(DEST.PORT);
  if (!address || !port || port.length < 2) return undefined;
  return {
    family: fam,
    address,
    port: port.readUInt16BE(0),
    forward: (readU32(a.get(DEST.FWD_METHOD)) ?? 0) & IP_VS_CONN_F_FWD_MASK,
    weight: readU32(a.get(DEST.WEIGHT)) ?? 0,
    upperThreshold: readU32(a.get(DEST.U_THRESH)) ?? 0,
    lowerThreshold: readU32(a.get(DEST.L_THRESH)) ?? 0,
    activeConns: readU32(a.get(DEST.ACTIVE_CONNS)) ?? 0,
    inactiveConns: readU32(a.get(DEST.INACT_CONNS)) ?? 0,
  };
}

/** IPVS_CMD_SET_INFO, the GET_INFO reply: the version (e.g. 0x010201, "1.2.1") and table size. */
export function decodeInfo(payload: Buffer): { version: string; connTabSize: number } | undefined {
  const a = decodeGenl(payload).attrs;
  const v = readU32(a.get(INFO_ATTR_VERSION));
  if (v === undefined) return undefined;
  return {
    version: `${v >> 16}.${(v >> 8) & 0xff}.${v & 0xff}`,
    connTabSize: readU32(a.get(INFO_ATTR_CONN_TAB_SIZE)) ?? 0,
  };
}
