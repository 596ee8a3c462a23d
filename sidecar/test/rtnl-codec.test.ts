// The pure half of the kernel layer: netlink attributes, the rtnetlink headers, and the IP and
// MAC text the kernel layer takes and gives back.
import { addrFromBytes, attr, formatAddr, formatMac, nested, parseAttrs, str, u16be, u32 } from '@cnmd/netutil';
import { describe, expect, it } from 'vitest';
import { ipBytes, macBytes, parsePrefix, rtnl } from '../src/internal.js';

const formatIp = (b: Buffer): string => formatAddr(addrFromBytes(b));

describe('netlink attributes', () => {
  it('pads each attribute to 4 bytes and counts only the header and payload in nla_len', () => {
    // include/uapi/linux/netlink.h: nla_len covers header + payload, not the padding.
    expect(str(3, 'eth0')).toEqual(Buffer.from([9, 0, 3, 0, 0x65, 0x74, 0x68, 0x30, 0, 0, 0, 0]));
    expect(u32(4, 1450)).toEqual(Buffer.from([8, 0, 4, 0, 0xaa, 0x05, 0, 0]));
    // IFLA_VXLAN_PORT is in network byte order.
    expect(u16be(15, 4789)).toEqual(Buffer.from([6, 0, 15, 0, 0x12, 0xb5, 0, 0]));
  });

  it('marks nested attributes and parses them back', () => {
    const info = nested(18, str(1, 'veth'), nested(2, attr(1, Buffer.from([1, 2, 3]))));
    expect(info.readUInt16LE(2)).toBe(18 | 0x8000);
    const outer = parseAttrs(info);
    const inner = parseAttrs(outer.get(18)!);
    expect(inner.get(1)!.toString()).toBe('veth\0');
    expect(parseAttrs(inner.get(2)!).get(1)).toEqual(Buffer.from([1, 2, 3]));
  });

  it('stops at a truncated attribute instead of reading past the buffer', () => {
    const b = Buffer.concat([u32(4, 1), Buffer.from([40, 0, 3, 0, 1])]);
    expect([...parseAttrs(b).keys()]).toEqual([4]);
  });
});

describe('rtnetlink headers', () => {
  it('struct ifinfomsg: family, type, index, flags, change', () => {
    const b = rtnl.ifinfomsg({ index: 7, flags: rtnl.IFF_UP, change: rtnl.IFF_UP });
    expect(b).toEqual(Buffer.from([0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]));
  });

  it('struct ndmsg of a static FDB entry, and a neighbour read back', () => {
    const m = rtnl.ndmsg({ family: rtnl.AF_BRIDGE, index: 7, state: rtnl.NUD_PERMANENT, flags: rtnl.NTF_SELF });
    // include/uapi/linux/neighbour.h: family, pad1, pad2 (u16), ifindex (s32), state (u16), flags, type
    expect(m).toEqual(Buffer.from([7, 0, 0, 0, 7, 0, 0, 0, 0x80, 0, 2, 0]));
    const body = Buffer.concat([
      rtnl.ndmsg({ family: rtnl.AF_INET, index: 7, state: rtnl.NUD_PERMANENT }),
      attr(rtnl.NDA_DST, ipBytes('10.0.0.5')),
      attr(rtnl.NDA_LLADDR, macBytes('02:42:0a:00:00:05')),
    ]);
    expect(rtnl.parseNeigh(body)).toEqual({ link: 7, state: 0x80, ip: '10.0.0.5', mac: '02:42:0a:00:00:05' });
  });

  it('struct rtmsg of a default route: main table, boot protocol, universe scope, unicast', () => {
    expect(rtnl.rtmsg({ family: rtnl.AF_INET })).toEqual(Buffer.from([2, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0]));
  });

  it('parses a link, an address and a route as the kernel sends them', () => {
    const link = Buffer.concat([
      rtnl.ifinfomsg({ index: 5, flags: rtnl.IFF_UP | 0x1000 }),
      str(rtnl.IFLA_IFNAME, 'eth0'),
      attr(rtnl.IFLA_ADDRESS, macBytes('02:42:ac:11:00:02')),
      u32(rtnl.IFLA_MTU, 1500),
      u32(rtnl.IFLA_MASTER, 3),
      nested(rtnl.IFLA_LINKINFO, str(rtnl.IFLA_INFO_KIND, 'veth')),
    ]);
    expect(rtnl.parseLink(link)).toEqual({
      index: 5,
      name: 'eth0',
      kind: 'veth',
      mac: '02:42:ac:11:00:02',
      mtu: 1500,
      up: true,
      master: 3,
    });
    const addr = Buffer.concat([
      rtnl.ifaddrmsg({ family: rtnl.AF_INET, prefixlen: 16, index: 5 }),
      attr(rtnl.IFA_ADDRESS, ipBytes('172.17.0.2')),
      attr(rtnl.IFA_LOCAL, ipBytes('172.17.0.2')),
    ]);
    expect(rtnl.parseAddress(addr)).toEqual({ link: 5, cidr: '172.17.0.2/16' });
    const route = Buffer.concat([
      rtnl.rtmsg({ family: rtnl.AF_INET6 }),
      u32(rtnl.RTA_TABLE, 254),
      attr(rtnl.RTA_GATEWAY, ipBytes('fd00::1')),
      u32(rtnl.RTA_OIF, 5),
    ]);
    expect(rtnl.parseRoute(route)).toEqual({ dst: 'default', gateway: 'fd00::1', link: 5, table: 254 });
  });
});

describe('addresses', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    ['::', '::'],
    ['::1', '::1'],
    ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // RFC 5952 4.2.3: the first of equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // 4.2.2: never '::' for one group
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['fe80::1:2', 'fe80::1:2'],
  ])('%s is %s', (text, canonical) => {
    const b = ipBytes(text);
    expect(b.length).toBe(text.includes(':') ? 16 : 4);
    expect(formatIp(b)).toBe(canonical);
    expect(ipBytes(canonical)).toEqual(b);
  });

  it.each(['10.0.0.256', '1::2::3', 'eth0', '', '10.0.0.0/8'])('%j is not an address', (text) => {
    expect(() => ipBytes(text)).toThrow(expect.objectContaining({ code: 'SIDECAR_INVALID_ARGUMENT' }));
  });

  it('parses prefixes, keeping the host bits of an interface address', () => {
    expect(parsePrefix('10.9.0.2/24')).toMatchObject({ family: 4, address: '10.9.0.2', length: 24 });
    expect(parsePrefix('fd00::2')).toMatchObject({ family: 6, length: 128 });
    for (const bad of ['10.0.0.1/33', '10.0.0.1/', 'fd00::/129', '10.0.0.1/24/1', '10.0.0.1/x']) {
      expect(() => parsePrefix(bad)).toThrow(expect.objectContaining({ code: 'SIDECAR_INVALID_ARGUMENT' }));
    }
  });

  it('reads and writes MACs', () => {
    expect(formatMac(macBytes('02:42:AC:11:00:02'))).toBe('02:42:ac:11:00:02');
    expect(() => macBytes('02:42:ac:11:00')).toThrow(expect.objectContaining({ code: 'SIDECAR_INVALID_ARGUMENT' }));
  });
});
