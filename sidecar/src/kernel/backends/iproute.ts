// The kernel layer over `ip` (iproute2) processes, one per call: the other way to do it,
// measured against rtnetlink sockets (see netlink.ts) and kept so tests can run both and
// either can replace the other. `ip -n` only knows /run/netns names (iproute2 6.1), so
// other paths (a Docker SandboxKey, /proc/PID/ns/net) go through `nsenter --net=PATH`.
import { execFile } from 'node:child_process';
import { SidecarError, type SidecarErrorCode } from '../../errors.js';
import { checkIp, checkMac, checkMtu, checkName, checkNetns, checkVni, writeIpv4Conf } from '../checks.js';
import { parsePrefix } from '../rtnl/inet.js';
import type {
  Address,
  FdbEntry,
  Kernel,
  Link,
  LinkChange,
  LinkOptions,
  MacvlanSpec,
  Neighbour,
  NetnsLinks,
  Route,
  VethSpec,
  VxlanSpec,
} from '../types.js';

export class IprouteKernel implements Kernel {
  readonly name = 'iproute';

  async open(netns?: string): Promise<NetnsLinks> {
    if (netns !== undefined) checkNetns(netns); // the same SIDECAR_NETNS_INVALID as netlink.ts
    return new IprouteLinks(netns);
  }
}

function prefixFor(tool: 'ip' | 'bridge', netns: string | undefined): [string, string[]] {
  if (netns === undefined) return [tool, []];
  const named = /^(?:\/var)?\/run\/netns\/([^/]+)$/.exec(netns);
  return named ? [tool, ['-n', named[1]!]] : ['nsenter', [`--net=${netns}`, tool]];
}

/** iproute2 prints the kernel's strerror; EEXIST and ENODEV name the error, the rest is plain. */
function errorCode(stderr: string, exists: SidecarErrorCode): SidecarErrorCode {
  if (/File exists|already assigned/.test(stderr)) return exists;
  if (/Cannot find device|does not exist|No such device/.test(stderr)) return 'SIDECAR_LINK_NOT_FOUND';
  return 'SIDECAR_IPROUTE';
}

/** Runs `ip` in a namespace; a failure is a SidecarError with ip's stderr in the message. */
function ip(
  netns: string | undefined,
  args: string[],
  exists: SidecarErrorCode = 'SIDECAR_LINK_EXISTS',
  tool: 'ip' | 'bridge' = 'ip',
): Promise<string> {
  const [cmd, pre] = prefixFor(tool, netns);
  return new Promise((resolve, reject) => {
    execFile(cmd, [...pre, ...args], (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const msg = `${tool} ${args.join(' ')} in ${netns ?? 'this namespace'}: ${stderr.trim()}`;
      reject(new SidecarError(errorCode(stderr, exists), msg, { cause: err }));
    });
  });
}

/** Runs `bridge` (iproute2's FDB tool) in a namespace. */
const bridge = (netns: string | undefined, args: string[]) => ip(netns, args, 'SIDECAR_LINK_EXISTS', 'bridge');

function opts(o: LinkOptions): string[] {
  checkMtu(o.mtu);
  const out = o.mtu !== undefined ? ['mtu', String(o.mtu)] : [];
  if (o.mac !== undefined) out.push('address', checkMac(o.mac));
  return out;
}

class IprouteLinks implements NetnsLinks {
  readonly netns: string | undefined;

  constructor(netns: string | undefined) {
    this.netns = netns;
  }

  #ip(args: string[], exists?: SidecarErrorCode): Promise<string> {
    return ip(this.netns, args, exists);
  }

  async links(): Promise<Link[]> {
    const out = JSON.parse(await this.#ip(['-j', '-d', 'link', 'show'])) as IpLink[];
    const byName = new Map(out.map((l) => [l.ifname, l.ifindex]));
    return out.map((l) => toLink(l, byName));
  }

  async link(name: string): Promise<Link> {
    const found = (await this.links()).find((l) => l.name === checkName(name));
    if (!found) throw new SidecarError('SIDECAR_LINK_NOT_FOUND', `link ${name}: no such link`);
    return found;
  }

  async addBridge(name: string, o: LinkOptions = {}): Promise<void> {
    await this.#ip(['link', 'add', checkName(name), ...opts(o), ...(o.up ? ['up'] : []), 'type', 'bridge']);
  }

  async addVeth(s: VethSpec): Promise<void> {
    const peer = [
      'name',
      checkName(s.peer.name),
      ...opts(s.peer),
      ...(s.peer.netns ? ['netns', checkNetns(s.peer.netns)] : []),
    ];
    const master = s.master === undefined ? [] : ['master', checkName(s.master)];
    await this.#ip([
      'link',
      'add',
      checkName(s.name),
      ...opts(s),
      ...master,
      ...(s.up ? ['up'] : []),
      'type',
      'veth',
      'peer',
      ...peer,
    ]);
  }

  async addMacvlan(s: MacvlanSpec): Promise<void> {
    const ns = s.netns ? ['netns', checkNetns(s.netns)] : [];
    await this.#ip([
      'link',
      'add',
      'link',
      checkName(s.parent),
      'name',
      checkName(s.name),
      ...opts(s),
      ...ns,
      'type',
      'macvlan',
      'mode',
      'bridge',
    ]);
    if (s.up) await ip(s.netns ?? this.netns, ['link', 'set', s.name, 'up']);
  }

  async addVxlan(s: VxlanSpec): Promise<void> {
    checkVni(s.vni);
    const args = ['link', 'add', checkName(s.name), ...opts(s), 'type', 'vxlan', 'id', String(s.vni)];
    args.push('dstport', String(s.port ?? 4789), s.learning ? 'learning' : 'nolearning');
    if (s.proxy) args.push('proxy');
    if (s.local !== undefined) args.push('local', checkIp(s.local));
    if (s.remote !== undefined) args.push('remote', checkIp(s.remote));
    if (s.parent !== undefined) args.push('dev', checkName(s.parent));
    await this.#ip(args);
    if (s.up) await this.#ip(['link', 'set', s.name, 'up']);
  }

  async deleteLink(name: string): Promise<void> {
    await this.#ip(['link', 'del', checkName(name)]);
  }

  async setLink(name: string, c: LinkChange): Promise<void> {
    checkMtu(c.mtu);
    const args = ['link', 'set', 'dev', checkName(name)];
    if (c.netns !== undefined) args.push('netns', checkNetns(c.netns));
    if (c.name !== undefined) args.push('name', checkName(c.name));
    if (c.mtu !== undefined) args.push('mtu', String(c.mtu));
    if (c.mac !== undefined) args.push('address', checkMac(c.mac));
    if (c.master !== undefined) args.push(...(c.master === null ? ['nomaster'] : ['master', checkName(c.master)]));
    if (c.up !== undefined) args.push(c.up ? 'up' : 'down');
    await this.#ip(args);
  }

  async setHairpin(name: string, on: boolean): Promise<void> {
    await this.#ip(['link', 'set', 'dev', checkName(name), 'type', 'bridge_slave', 'hairpin', on ? 'on' : 'off']);
  }

  async addAddress(name: string, cidr: string): Promise<void> {
    const p = parsePrefix(cidr);
    const extra = p.family === 6 ? ['nodad'] : p.length < 31 ? ['broadcast', '+'] : [];
    await this.#ip(['addr', 'add', cidr, 'dev', checkName(name), ...extra], 'SIDECAR_ADDRESS_EXISTS');
  }

  async deleteAddress(name: string, cidr: string): Promise<void> {
    parsePrefix(cidr);
    await this.#ip(['addr', 'del', cidr, 'dev', checkName(name)]);
  }

  async addresses(name?: string): Promise<Address[]> {
    const out = JSON.parse(
      await this.#ip(['-j', 'addr', 'show', ...(name ? ['dev', checkName(name)] : [])]),
    ) as IpAddr[];
    return out.flatMap((l) => l.addr_info.map((a) => ({ link: l.ifindex, cidr: `${a.local}/${a.prefixlen}` })));
  }

  async addRoute(r: { dst: string; gateway?: string; link?: string; replace?: boolean }): Promise<void> {
    if (r.dst !== 'default') parsePrefix(r.dst);
    if (r.gateway === undefined && r.link === undefined) {
      throw new SidecarError('SIDECAR_INVALID_ARGUMENT', `a route needs a gateway or a link: ${JSON.stringify(r)}`);
    }
    const family = r.gateway?.includes(':') || r.dst.includes(':') ? ['-6'] : [];
    const args = [...family, 'route', r.replace ? 'replace' : 'add', r.dst];
    if (r.gateway !== undefined) args.push('via', checkIp(r.gateway));
    if (r.link !== undefined) args.push('dev', checkName(r.link));
    await this.#ip(args, 'SIDECAR_ROUTE_EXISTS');
  }

  async routes(family?: 4 | 6): Promise<Route[]> {
    const out = JSON.parse(
      await this.#ip([family === 6 ? '-6' : '-4', '-j', 'route', 'show', 'table', 'main']),
    ) as IpRoute[];
    const links = new Map((await this.links()).map((l) => [l.name, l.index]));
    return out.map((r) => ({ dst: r.dst, gateway: r.gateway, link: r.dev ? links.get(r.dev) : undefined }));
  }

  async setArpNotify(name: string, on: boolean): Promise<void> {
    writeIpv4Conf(this.netns, name, 'arp_notify', on ? '1' : '0');
  }

  async addNeighbour(link: string, n: Neighbour): Promise<void> {
    await this.#ip([
      'neigh',
      'replace',
      checkIp(n.ip),
      'lladdr',
      checkMac(n.mac),
      'dev',
      checkName(link),
      'nud',
      'permanent',
    ]);
  }

  async deleteNeighbour(link: string, ip: string): Promise<void> {
    await this.#ip(['neigh', 'del', checkIp(ip), 'dev', checkName(link)]).catch(() => {}); // gone already
  }

  async neighbours(link: string): Promise<Neighbour[]> {
    const out = JSON.parse(await this.#ip(['-j', 'neigh', 'show', 'dev', checkName(link), 'nud', 'permanent'])) as {
      dst: string;
      lladdr?: string;
    }[];
    return out.filter((n) => n.lladdr).map((n) => ({ ip: n.dst, mac: n.lladdr! }));
  }

  async addFdb(link: string, e: FdbEntry): Promise<void> {
    await bridge(this.netns, [
      'fdb',
      'replace',
      checkMac(e.mac),
      'dev',
      checkName(link),
      'dst',
      checkIp(e.dst),
      'self',
      'permanent',
    ]);
  }

  async deleteFdb(link: string, e: FdbEntry): Promise<void> {
    await bridge(this.netns, [
      'fdb',
      'del',
      checkMac(e.mac),
      'dev',
      checkName(link),
      'dst',
      checkIp(e.dst),
      'self',
    ]).catch(() => {});
  }

  async fdb(link: string): Promise<FdbEntry[]> {
    const out = JSON.parse(await bridge(this.netns, ['-j', 'fdb', 'show', 'dev', checkName(link)])) as {
      mac: string;
      dst?: string;
    }[];
    return out.filter((e) => e.dst && e.mac !== '00:00:00:00:00:00').map((e) => ({ mac: e.mac, dst: e.dst! }));
  }

  async close(): Promise<void> {}

  async [Symbol.asyncDispose](): Promise<void> {}
}

interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  address?: string;
  master?: string;
  linkinfo?: { info_kind?: string };
}
interface IpAddr {
  ifindex: number;
  addr_info: { local: string; prefixlen: number }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

function toLink(l: IpLink, byName: Map<string, number>): Link {
  return {
    index: l.ifindex,
    name: l.ifname,
    kind: l.linkinfo?.info_kind,
    mac: l.address ?? '00:00:00:00:00:00',
    mtu: l.mtu,
    up: l.flags.includes('UP'),
    master: l.master ? byName.get(l.master) : undefined,
  };
}
