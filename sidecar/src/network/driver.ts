// The network driver API (libnetwork's driverapi): what the controller asks of a driver, and
// nothing else. A driver owns how a network exists on this host (a bridge, a macvlan parent,
// nothing) and how an endpoint's interface gets into a sandbox; the controller owns the rest
// (records, IPAM, addresses and routes in the sandbox, DNS, services, published ports) and never
// looks at which driver it has. The drivers are in ../drivers/, one folder each; the daemon
// hands the controller a Drivers registry of them.
import { SidecarError } from '../errors.js';
import type { Kernel, NetnsLinks } from '../kernel/types.js';
import type { Xfrm } from '../kernel/xfrm/xfrm.js';
import type { FirewallHooks } from './hooks.js';
import type { EndpointRecord, NetworkRecord, RemoteEndpoint } from './records.js';
import type { NetworkSpec } from './spec.js';

export interface DriverCapability {
  /** local: a network of this host only (bridge, macvlan); global: one network for the cluster. */
  scope: 'local' | 'global';
  /** Its networks get a load-balancer sandbox for their services' VIPs. */
  lbSandbox: boolean;
  /** Its networks have firewall rules of their own (isolation, masquerade, published ports). */
  firewall: boolean;
  /** No network of it is created by a user: it serves a predefined one (`none`, `host`). */
  predefined?: boolean;
  /** Its networks have no gateway unless given one (an overlay: containers talk among
   * themselves; libnetwork gives outbound through a second network). */
  noGateway?: boolean;
  /** Its networks need a VNI from the cluster (--opt vni, else the next free from 4096). */
  vni?: boolean;
  /** How its endpoints' MACs are made: random (default), or 02:42 + the IPv4 address. */
  macs?: 'random' | 'ip-derived';
  /** Its networks may be encrypted (--opt encrypted): a VXLAN port and keys from the cluster. */
  encryption?: boolean;
}

/** An encrypted network's keys, from the cluster (cluster/keys.ts): the tag of each (oldest
 * first) and the one this host sends with. */
export interface NetworkKeys {
  keys: { tag: number; key: Buffer }[];
  primary: number;
  /** By underlay address, the tags each live host has said it holds; a state of a peer not
   * here (dead, or never given the keys) is not kept once the peer has no containers. */
  held?: Map<string, number[]>;
}

export interface NetworkDriver {
  /** The --driver name. */
  readonly name: string;
  readonly capability: DriverCapability;
  /** Checks the driver's options in a spec before anything is made; throws API_INVALID_ARGUMENT. */
  validate(spec: NetworkSpec): void;
  /**
   * The device that stands for a new network on this host (a bridge's name, the macvlan parent);
   * throws when it cannot be (SIDECAR_LINK_NOT_FOUND: no such parent; an MTU the parent cannot
   * carry). Nothing is made yet.
   */
  device(id: string, spec: NetworkSpec): Promise<string>;
  /** Makes what the network needs on this host; idempotent (a restart calls it again). */
  buildNetwork(net: NetworkRecord): Promise<void>;
  /** Removes whatever part of it exists; safe on a half-made one. */
  deleteNetwork(net: NetworkRecord): Promise<void>;
  /**
   * Makes the endpoint's interface, inside its sandbox, named `ep.ifname`, with `ep.mac` and the
   * network's MTU, down; the controller configures it (addresses, routes, up) from there.
   */
  join(net: NetworkRecord, ep: EndpointRecord): Promise<void>;
  /** Removes the endpoint's interface; gone already (the sandbox died) is fine. */
  leave(net: NetworkRecord, ep: EndpointRecord): Promise<void>;
  /** Whether the endpoint's interface still exists (a restart rebuilds what is missing). */
  present(net: NetworkRecord, ep: EndpointRecord): Promise<boolean>;
  /**
   * A global network's driver that carries traffic between hosts: an endpoint on another host
   * came (on) or went, and this host's side must reach it (or no longer).
   */
  peer?(net: NetworkRecord, ep: RemoteEndpoint, on: boolean): Promise<void>;
  /** After a resync: the network's peers are exactly these (what is right is left alone). */
  syncPeers?(net: NetworkRecord, peers: RemoteEndpoint[]): Promise<void>;
  /**
   * An encrypted network's keys came or changed (a rotation's step): its traffic follows them.
   * True when, at the first keys since the daemon started, the kernel held none of the
   * network's states: if this host held the keys before, a reboot lost them, its peers' states
   * have moved on, and only new keys bring both ends together (the cluster rotates them).
   */
  rekey?(net: NetworkRecord, keys: NetworkKeys): Promise<boolean>;
}

/** What drivers are given to work with: the kernel, the host's links, the firewall. */
export interface DriverContext {
  kernel: Kernel;
  /** The links of the namespace the daemon runs in (opened once). */
  host(): Promise<NetnsLinks>;
  firewall: FirewallHooks;
  /** This host's underlay (--advertise-addr, and the link holding it), for drivers between hosts. */
  underlay?(): Promise<{ address: string; link: string; mtu: number } | undefined>;
  /** The namespace's IPsec (XFRM); SIDECAR_ESP_UNAVAILABLE where the kernel has none. */
  xfrm?(): Promise<Xfrm>;
}

/** The drivers of a daemon, by name. */
export class Drivers {
  readonly #all = new Map<string, NetworkDriver>();

  constructor(drivers: NetworkDriver[]) {
    for (const d of drivers) this.#all.set(d.name, d);
  }

  /** The driver of a network; SIDECAR_DRIVER_UNKNOWN names the drivers there are. */
  get(name: string): NetworkDriver {
    const d = this.#all.get(name);
    if (!d) {
      throw new SidecarError('SIDECAR_DRIVER_UNKNOWN', `no network driver ${JSON.stringify(name)}: ${this.#names()}`);
    }
    return d;
  }

  /** Checks a spec of `network create`: its driver exists, may be created, and takes its options. */
  check(spec: NetworkSpec): NetworkDriver {
    const d = this.get(spec.driver);
    if (d.capability.predefined) {
      throw new SidecarError(
        'SIDECAR_INVALID_ARGUMENT',
        `the ${d.name} driver serves a predefined network alone; create one of ${this.#names()}`,
      );
    }
    d.validate(spec);
    return d;
  }

  #names(): string {
    return [...this.#all.values()]
      .filter((d) => !d.capability.predefined)
      .map((d) => d.name)
      .join(', ');
  }
}
