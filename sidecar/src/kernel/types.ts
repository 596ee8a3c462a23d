// The kernel layer's contract (libnetwork's osl/ and its netlink.Handle): links, addresses
// and routes of one network namespace at a time. Two backends implement it: rtnetlink sockets
// (backends/netlink.ts, the one the sidecar uses; see its header for the measurement) and
// `ip` processes (backends/iproute.ts), so that tests can run either and one can replace the
// other. Namespaces are named by path (/run/netns/NAME, a Docker SandboxKey, /proc/PID/ns/net).

/** A link as its namespace reports it (RTM_GETLINK). */
export interface Link {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: 'veth', 'bridge', 'macvlan', 'vxlan'; undefined for lo and hardware. */
  kind: string | undefined;
  /** aa:bb:cc:dd:ee:ff */
  mac: string;
  mtu: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** The ifindex of the bridge this link is a port of. */
  master: number | undefined;
}

/** An interface address, "10.0.0.2/24" or "fd00::2/64". */
export interface Address {
  link: number;
  cidr: string;
}

/** A route of the main table; dst "default" for 0.0.0.0/0 and ::/0. */
export interface Route {
  dst: string;
  gateway: string | undefined;
  link: number | undefined;
}

export interface LinkOptions {
  mtu?: number;
  mac?: string;
  /** Bring the link up once made (default false, as the kernel does). */
  up?: boolean;
}

export interface VethSpec extends LinkOptions {
  /** The end that stays in this namespace (the host side: vethXXXX). */
  name: string;
  /** Make this end a port of that bridge at once. */
  master?: string;
  /**
   * The other end, created directly in `netns` (the sandbox) under its final name (eth0). It
   * starts down: the kernel cannot open a veth end before its peer exists (drivers/net/veth.c
   * veth_open: ENOTCONN), so it is brought up from its own namespace afterwards.
   */
  peer: Omit<LinkOptions, 'up'> & { name: string; netns?: string };
}

export interface MacvlanSpec extends LinkOptions {
  name: string;
  /** The parent link, in this namespace. */
  parent: string;
  /** Created directly in that namespace; the parent stays here. */
  netns?: string;
}

export interface VxlanSpec extends LinkOptions {
  name: string;
  /** 24-bit VXLAN network identifier; cnmd's start at 4096. */
  vni: number;
  /** UDP destination port; 4789 (IANA) by default. */
  port?: number;
  /** The source address of the tunnel. */
  local?: string;
  /** A single remote VTEP; without it, the forwarding table (or learning) decides. */
  remote?: string;
  /** Learn remote MACs from received packets (default false: cnmd programs the FDB). */
  learning?: boolean;
  /** ARP suppression (IFLA_VXLAN_PROXY): the device answers ARP requests for addresses its own
   * neighbour table holds, so they never cross the underlay (default false). */
  proxy?: boolean;
  /** The underlay link. */
  parent?: string;
}

/** A permanent neighbour (ARP/NDP) entry on a link: `ip` is reached at `mac`. */
export interface Neighbour {
  ip: string;
  mac: string;
}

/** A static forwarding entry of a VXLAN device: frames for `mac` go to the VTEP `dst`. */
export interface FdbEntry {
  mac: string;
  dst: string;
}

/** Changes to an existing link, applied in one request. */
export interface LinkChange {
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** A new name (in the target namespace, when moving). */
  name?: string;
  /** A bridge to join, or null to leave the bridge. */
  master?: string | null;
  /** Move the link into that namespace. */
  netns?: string;
}

/** The links, addresses and routes of one namespace. */
export interface NetnsLinks extends AsyncDisposable {
  /** The namespace's path; undefined for the namespace this process started in. */
  readonly netns: string | undefined;
  links(): Promise<Link[]>;
  /** Throws SIDECAR_LINK_NOT_FOUND. */
  link(name: string): Promise<Link>;
  addBridge(name: string, opts?: LinkOptions): Promise<void>;
  addVeth(spec: VethSpec): Promise<void>;
  addMacvlan(spec: MacvlanSpec): Promise<void>;
  addVxlan(spec: VxlanSpec): Promise<void>;
  /** Deleting one end of a veth deletes both. Throws SIDECAR_LINK_NOT_FOUND. */
  deleteLink(name: string): Promise<void>;
  setLink(name: string, change: LinkChange): Promise<void>;
  /** Lets a bridge port send frames back out of the port they came in on (IFLA_BRPORT_MODE). */
  setHairpin(name: string, on: boolean): Promise<void>;
  addAddress(name: string, cidr: string): Promise<void>;
  deleteAddress(name: string, cidr: string): Promise<void>;
  addresses(name?: string): Promise<Address[]>;
  /** A route of the main table: `dst` "default" or a CIDR, via `gateway` and/or out of `link`. */
  addRoute(route: { dst: string; gateway?: string; link?: string; replace?: boolean }): Promise<void>;
  routes(family?: 4 | 6): Promise<Route[]>;
  /** net.ipv4.conf.<name>.arp_notify: announce a new or changed address/MAC with gratuitous ARP. */
  setArpNotify(name: string, on: boolean): Promise<void>;
  /** Adds (or replaces) a permanent neighbour entry on a link (RTM_NEWNEIGH, NUD_PERMANENT). */
  addNeighbour(link: string, n: Neighbour): Promise<void>;
  /** Deletes one; a missing entry is fine. */
  deleteNeighbour(link: string, ip: string): Promise<void>;
  /** The permanent neighbour entries of a link. */
  neighbours(link: string): Promise<Neighbour[]>;
  /** Adds (or replaces) a static FDB entry of a VXLAN device (AF_BRIDGE, NTF_SELF, permanent). */
  addFdb(link: string, e: FdbEntry): Promise<void>;
  /** Deletes one by MAC; a missing entry is fine. */
  deleteFdb(link: string, e: FdbEntry): Promise<void>;
  /** The static FDB entries of a VXLAN device that name a destination (the unicast ones). */
  fdb(link: string): Promise<FdbEntry[]>;
  close(): Promise<void>;
}

export interface Kernel {
  readonly name: string;
  /** The links of the namespace at `netns` (a path), or of this process's own without one. */
  open(netns?: string): Promise<NetnsLinks>;
}
