// What the firewall has in force, validated and in canonical form; shared by the nftables and
// memory firewalls so that both refuse the same things with the same codes. Nothing here
// touches the kernel: a plan is checked first, then committed once the kernel took it.
import {
  type Addr,
  type Cidr,
  contains,
  type Family,
  formatAddr,
  formatCidr,
  isNetwork,
  overlaps,
  parseAddr,
  parseCidr,
} from '@cnmd/netutil';
import { FirewallError, invalid } from './errors.js';
import type { FwHostPort, FwNetwork, FwPort } from './types.js';

/** Linux IFNAMSIZ is 16 with the NUL; the characters keep the name safe inside nft's quotes. */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** "10.1.0.0/24" or "fd00::/64"; the address must be the network address (nft would silently
 * widen it otherwise, and a subnet with host bits is a mistake upstream). */
function parseNetwork(s: string): Cidr | undefined {
  const c = parseCidr(s);
  return c && isNetwork(c) ? c : undefined;
}

/** 0.0.0.0 or ::, which stands for all of the family's addresses. */
const isUnspecified = (a: Addr): boolean => a.value === 0n;

export interface NetEntry {
  spec: FwNetwork;
  v4: Cidr;
  v6: Cidr | undefined;
}

export interface PortEntry {
  spec: FwPort;
  family: Family;
  /** The host address, undefined for all of the family's addresses. */
  host: Addr | undefined;
  address: Addr;
}

export function checkNetwork(n: FwNetwork): NetEntry {
  if (typeof n !== 'object' || n === null) throw invalid('a network must be an object');
  if (typeof n.name !== 'string' || n.name === '') throw invalid('network name must be a non-empty string');
  if (typeof n.bridge !== 'string' || !IFNAME.test(n.bridge) || n.bridge === '.' || n.bridge === '..') {
    throw invalid(`network ${n.name}: bridge ${JSON.stringify(n.bridge)} is not an interface name`);
  }
  const v4 = parseNetwork(n.subnet);
  if (v4?.family !== 4) throw invalid(`network ${n.name}: subnet ${JSON.stringify(n.subnet)} is not an IPv4 network`);
  let v6: Cidr | undefined;
  if (n.subnet6 !== undefined) {
    v6 = parseNetwork(n.subnet6);
    if (v6?.family !== 6) {
      throw invalid(`network ${n.name}: subnet6 ${JSON.stringify(n.subnet6)} is not an IPv6 network`);
    }
  }
  if (typeof n.internal !== 'boolean' || typeof n.icc !== 'boolean') {
    throw invalid(`network ${n.name}: internal and icc must be true or false`);
  }
  const spec: FwNetwork = { name: n.name, bridge: n.bridge, subnet: formatCidr(v4), internal: n.internal, icc: n.icc };
  if (v6) spec.subnet6 = formatCidr(v6);
  return { spec, v4, v6 };
}

const isPort = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;

export function checkPort(p: FwPort): PortEntry {
  if (typeof p !== 'object' || p === null) throw invalid('a port must be an object');
  const what = `port ${p.hostIp ?? ''}:${p.hostPort}/${p.proto}`;
  if (p.proto !== 'tcp' && p.proto !== 'udp') throw invalid(`${what}: proto must be tcp or udp`);
  if (!isPort(p.hostPort) || !isPort(p.port)) throw invalid(`${what}: ports must be integers from 1 to 65535`);
  if (typeof p.network !== 'string' || typeof p.bridge !== 'string')
    throw invalid(`${what}: network and bridge are needed`);
  const address = parseAddr(p.address);
  if (!address || isUnspecified(address)) throw invalid(`${what}: address ${JSON.stringify(p.address)} is not valid`);
  let host: Addr | undefined;
  if (p.hostIp !== undefined && p.hostIp !== '') {
    host = parseAddr(p.hostIp);
    if (!host) throw invalid(`${what}: hostIp ${JSON.stringify(p.hostIp)} is not an address`);
    if (host.family !== address.family) throw invalid(`${what}: hostIp and address are of different families`);
    if (isUnspecified(host)) host = undefined;
  }
  const spec: FwPort = {
    network: p.network,
    bridge: p.bridge,
    proto: p.proto,
    hostPort: p.hostPort,
    address: formatAddr(address),
    port: p.port,
  };
  if (host) spec.hostIp = formatAddr(host);
  return { spec, family: address.family, host, address };
}

/** What identifies a published host port; a port on all addresses is `*`. */
const slot = (e: PortEntry): string => `${e.spec.proto}/${e.family}/${e.spec.hostPort}`;
const hostKey = (e: PortEntry): string => (e.host ? formatAddr(e.host) : '*');
/** The entry that keeps a host port (all addresses when `host` is undefined) from being published. */
function conflict(
  ports: Map<string, Map<string, PortEntry>>,
  at: string,
  host: string | undefined,
): PortEntry | undefined {
  const taken = ports.get(at);
  if (!taken) return undefined;
  return host === undefined ? taken.values().next().value : (taken.get('*') ?? taken.get(host));
}

const inUse = (what: string, o: PortEntry): FirewallError =>
  new FirewallError(
    'SIDECAR_PORT_IN_USE',
    `host port ${what} is already published` +
      (o.spec.network
        ? ` (${hostKey(o)}:${o.spec.hostPort} to ${o.spec.address}:${o.spec.port} on ${o.spec.network})`
        : ''),
  );

const sameNet = (a: FwNetwork, b: FwNetwork): boolean => JSON.stringify(a) === JSON.stringify(b);

export class FirewallState {
  readonly #nets = new Map<string, NetEntry>();
  /** slot → host address → entry: a slot's `*` excludes every other host address. */
  readonly #ports = new Map<string, Map<string, PortEntry>>();

  /** Every network and port checked together, as reconcile needs them. */
  static of(nets: FwNetwork[], ports: FwPort[]): FirewallState {
    const s = new FirewallState();
    for (const n of nets) {
      const e = s.planNetwork(n);
      if (e) s.commitNetwork(e);
    }
    for (const p of ports) s.commitPort(s.planPublish(p));
    return s;
  }

  networks(): NetEntry[] {
    return [...this.#nets.values()];
  }

  ports(): PortEntry[] {
    return [...this.#ports.values()].flatMap((m) => [...m.values()]);
  }

  network(name: string): NetEntry | undefined {
    return this.#nets.get(name);
  }

  portsOf(name: string): PortEntry[] {
    return this.ports().filter((p) => p.spec.network === name);
  }

  /** The checked network, or undefined when the same one is already there. */
  planNetwork(n: FwNetwork): NetEntry | undefined {
    const e = checkNetwork(n);
    const old = this.#nets.get(e.spec.name);
    if (old) {
      if (sameNet(old.spec, e.spec)) return undefined;
      throw new FirewallError('SIDECAR_NETWORK_CONFLICT', `network ${e.spec.name} exists with another configuration`);
    }
    for (const o of this.#nets.values()) {
      const clash =
        o.spec.bridge === e.spec.bridge
          ? `bridge ${e.spec.bridge}`
          : overlaps(o.v4, e.v4)
            ? `subnet ${o.spec.subnet}`
            : o.v6 && e.v6 && overlaps(o.v6, e.v6)
              ? `subnet ${o.spec.subnet6}`
              : undefined;
      if (clash) {
        throw new FirewallError(
          'SIDECAR_NETWORK_CONFLICT',
          `network ${e.spec.name}: ${clash} is network ${o.spec.name}'s`,
        );
      }
    }
    return e;
  }

  planPublish(p: FwPort): PortEntry {
    const e = checkPort(p);
    const net = this.#nets.get(e.spec.network);
    if (!net)
      throw new FirewallError('SIDECAR_NETWORK_NOT_FOUND', `network ${e.spec.network} is not known to the firewall`);
    const what = `${hostKey(e)}:${e.spec.hostPort}/${e.spec.proto}`;
    if (net.spec.bridge !== e.spec.bridge) {
      throw invalid(`port ${what}: network ${net.spec.name}'s bridge is ${net.spec.bridge}, not ${e.spec.bridge}`);
    }
    // libnetwork ignores port bindings on --internal networks; refusing says so.
    if (net.spec.internal)
      throw invalid(`port ${what}: network ${net.spec.name} is internal: nothing can be published`);
    const subnet = e.family === 4 ? net.v4 : net.v6;
    if (!subnet || !contains(subnet, e.address)) {
      throw invalid(`port ${what}: address ${e.spec.address} is not in network ${net.spec.name}'s subnets`);
    }
    const other = conflict(this.#ports, slot(e), e.host && hostKey(e));
    if (other) throw inUse(what, other);
    return e;
  }

  /** Whether these host ports could all be published, without publishing any: throws
   * SIDECAR_PORT_IN_USE for one taken already or named twice. A port without a host address
   * will be published on IPv4 and IPv6, so it is checked in both. */
  checkHostPorts(ports: FwHostPort[]): void {
    const mine = new Map<string, Map<string, PortEntry>>();
    for (const p of ports) {
      const families: Family[] = [4, 6];
      // Only the host side counts here: a stand-in container address of the host's family.
      const v6 = typeof p.hostIp === 'string' && parseAddr(p.hostIp)?.family === 6;
      const e = checkPort({ network: '', bridge: '', port: 1, ...p, address: v6 ? '2001:db8::1' : '192.0.2.1' });
      for (const f of e.host ? [e.family] : families) {
        const x = { ...e, family: f };
        const what = `${hostKey(x)}:${p.hostPort}/${p.proto}`;
        const other =
          conflict(this.#ports, slot(x), x.host && hostKey(x)) ?? conflict(mine, slot(x), x.host && hostKey(x));
        if (other) throw inUse(what, other);
        const m = mine.get(slot(x)) ?? new Map<string, PortEntry>();
        mine.set(slot(x), m.set(hostKey(x), x));
      }
    }
  }

  /** The published entry the port names (by proto, host address and host port), if any. */
  findPort(p: FwPort): PortEntry | undefined {
    const e = checkPort(p);
    return this.#ports.get(slot(e))?.get(hostKey(e));
  }

  commitNetwork(e: NetEntry): void {
    this.#nets.set(e.spec.name, e);
  }

  commitPort(e: PortEntry): void {
    const m = this.#ports.get(slot(e)) ?? new Map<string, PortEntry>();
    m.set(hostKey(e), e);
    this.#ports.set(slot(e), m);
  }

  dropPort(e: PortEntry): void {
    const m = this.#ports.get(slot(e));
    m?.delete(hostKey(e));
    if (m?.size === 0) this.#ports.delete(slot(e));
  }

  /** Forgets the network and its ports. */
  dropNetwork(name: string): void {
    for (const p of this.portsOf(name)) this.dropPort(p);
    this.#nets.delete(name);
  }

  clear(): void {
    this.#nets.clear();
    this.#ports.clear();
  }
}
