// rtnetlink message bodies: the fixed headers of include/uapi/linux/rtnetlink.h (ifinfomsg,
// ifaddrmsg, rtmsg) followed by attributes, and the parsing of what the kernel sends back.
// Pure functions, tested byte for byte without privileges (test/rtnl-messages.test.ts).

import { addrFromBytes, formatAddr, formatMac, parseAttrs, readStr, readU32 } from '@cnmd/netutil';
import type { Address, Link, Route } from '../types.js';

// include/uapi/linux/rtnetlink.h: message types.
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;

// include/uapi/linux/netlink.h: nlmsghdr flags (REQUEST and ACK are added by the socket).
export const NLM_F_DUMP = 0x300;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** include/uapi/linux/netlink.h: replace an existing object (with CREATE: add it if missing). */
export const NLM_F_REPLACE = 0x100;

// include/linux/socket.h
export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_BRIDGE = 7;

// include/uapi/linux/if.h
export const IFF_UP = 0x1;

// include/uapi/linux/if_link.h: IFLA_* attributes of a link.
export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_MASTER = 10;
export const IFLA_LINKINFO = 18;
export const IFLA_NET_NS_FD = 28;
// IFLA_LINKINFO nests these.
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const IFLA_INFO_SLAVE_KIND = 4;
export const IFLA_INFO_SLAVE_DATA = 5;
// include/uapi/linux/veth.h: the peer is a whole ifinfomsg with its own attributes.
export const VETH_INFO_PEER = 1;
// if_link.h: IFLA_BRPORT_MODE is the hairpin flag of a bridge port.
export const IFLA_BRPORT_MODE = 4;
// if_link.h: macvlan.
export const IFLA_MACVLAN_MODE = 1;
export const MACVLAN_MODE_BRIDGE = 4;
// if_link.h: vxlan.
export const IFLA_VXLAN_ID = 1;
export const IFLA_VXLAN_GROUP = 2;
export const IFLA_VXLAN_LINK = 3;
export const IFLA_VXLAN_LOCAL = 4;
export const IFLA_VXLAN_LEARNING = 7;
export const IFLA_VXLAN_PROXY = 11;
export const IFLA_VXLAN_PORT = 15;
export const IFLA_VXLAN_GROUP6 = 16;
export const IFLA_VXLAN_LOCAL6 = 17;

// include/uapi/linux/neighbour.h: neighbour (ARP, NDP) and bridge FDB entries.
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NUD_PERMANENT = 0x80;
export const NTF_SELF = 0x02;

// include/uapi/linux/if_addr.h
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_BROADCAST = 4;
/** No duplicate address detection: an IPv6 address is usable at once, not "tentative" for a second. */
export const IFA_F_NODAD = 0x02;

// rtnetlink.h: routes.
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_TABLE = 15;
export const RT_TABLE_MAIN = 254;
export const RTPROT_BOOT = 3;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RTN_UNICAST = 1;

/** struct ifinfomsg: u8 family, u8 pad, u16 type, s32 index, u32 flags, u32 change. */
export function ifinfomsg(m: { index?: number; flags?: number; change?: number; family?: number }): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(m.family ?? AF_UNSPEC, 0);
  b.writeInt32LE(m.index ?? 0, 4);
  b.writeUInt32LE(m.flags ?? 0, 8);
  b.writeUInt32LE(m.change ?? 0, 12);
  return b;
}

/** struct ifaddrmsg: u8 family, u8 prefixlen, u8 flags, u8 scope, u32 index. */
export function ifaddrmsg(m: { family: number; prefixlen?: number; flags?: number; index?: number }): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.prefixlen ?? 0, 1);
  b.writeUInt8(m.flags ?? 0, 2);
  b.writeUInt32LE(m.index ?? 0, 4);
  return b;
}

/** struct rtmsg: u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags. */
export function rtmsg(m: { family: number; dstLen?: number; table?: number; scope?: number; type?: number }): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.dstLen ?? 0, 1);
  b.writeUInt8(m.table ?? RT_TABLE_MAIN, 4);
  b.writeUInt8(RTPROT_BOOT, 5);
  b.writeUInt8(m.scope ?? RT_SCOPE_UNIVERSE, 6);
  b.writeUInt8(m.type ?? RTN_UNICAST, 7);
  return b;
}

/** struct ndmsg: u8 family, u8 pad1, u16 pad2, s32 ifindex, u16 state, u8 flags, u8 type. */
export function ndmsg(m: { family: number; index: number; state?: number; flags?: number }): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(m.family, 0);
  b.writeInt32LE(m.index, 4);
  b.writeUInt16LE(m.state ?? 0, 8);
  b.writeUInt8(m.flags ?? 0, 10);
  return b;
}

/** A neighbour or FDB entry: its link, state, the address (NDA_DST) and the MAC (NDA_LLADDR). */
export function parseNeigh(body: Buffer): { link: number; state: number; ip?: string; mac?: string } {
  const a = parseAttrs(body, 12);
  const dst = a.get(NDA_DST);
  const ll = a.get(NDA_LLADDR);
  return {
    link: body.readInt32LE(4),
    state: body.readUInt16LE(8),
    ...(dst ? { ip: formatAddr(addrFromBytes(dst)) } : {}),
    ...(ll?.length === 6 ? { mac: formatMac(ll) } : {}),
  };
}

export function parseLink(body: Buffer): Link {
  const a = parseAttrs(body, 16);
  const info = a.get(IFLA_LINKINFO);
  const master = readU32(a.get(IFLA_MASTER));
  return {
    index: body.readInt32LE(4),
    name: readStr(a.get(IFLA_IFNAME)) ?? '',
    kind: info ? readStr(parseAttrs(info).get(IFLA_INFO_KIND)) : undefined,
    mac: formatMac(a.get(IFLA_ADDRESS) ?? Buffer.alloc(6)),
    mtu: readU32(a.get(IFLA_MTU)) ?? 0,
    up: (body.readUInt32LE(8) & IFF_UP) !== 0,
    master: master || undefined,
  };
}

export function parseAddress(body: Buffer): Address {
  const a = parseAttrs(body, 8);
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links
  // and the same address elsewhere. IPv6 sends only IFA_ADDRESS.
  const ip = a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS) ?? Buffer.alloc(body[0] === AF_INET ? 4 : 16);
  return { link: body.readUInt32LE(4), cidr: `${formatAddr(addrFromBytes(ip))}/${body[1]}` };
}

export function parseRoute(body: Buffer): Route & { table: number } {
  const a = parseAttrs(body, 12);
  const dst = a.get(RTA_DST);
  const gw = a.get(RTA_GATEWAY);
  return {
    dst: dst ? `${formatAddr(addrFromBytes(dst))}/${body[1]}` : 'default',
    gateway: gw ? formatAddr(addrFromBytes(gw)) : undefined,
    link: readU32(a.get(RTA_OIF)),
    table: readU32(a.get(RTA_TABLE)) ?? body[4]!,
  };
}
