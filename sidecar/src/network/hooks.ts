// What the controller asks of the firewall and of DNS, in its own terms (records). The
// daemon wires real ones (firewall/hooks.ts over nftables, dns/wiring.ts over @cnmd/dns).

import type { Allocation } from '@cnmd/ipam';
import type {
  EndpointRecord,
  NetworkRecord,
  PublishTarget,
  RemoteEndpoint,
  ServiceRecord,
  ServiceTask,
} from './records.js';
import type { KeysStatus, NetworkSpec, PortSpec } from './spec.js';

export interface FirewallHooks {
  addNetwork(net: NetworkRecord): Promise<void>;
  removeNetwork(net: NetworkRecord): Promise<void>;
  /** Throws SIDECAR_PORT_IN_USE when a host port is published already; changes nothing. */
  checkPorts(ports: PortSpec[]): Promise<void>;
  /** Host port → the target's address(es) (an endpoint's, or a service's VIPs). */
  publish(net: NetworkRecord, to: PublishTarget, port: PortSpec): Promise<void>;
  unpublish(net: NetworkRecord, to: PublishTarget, port: PortSpec): Promise<void>;
  /** Makes the rules match these records exactly (after a restart): the networks with firewall
   * rules of their own (their driver says so), and what publishes ports on them. */
  reconcile(nets: NetworkRecord[], targets: PublishTarget[]): Promise<void>;
  close(): Promise<void>;
}

export interface DnsHooks {
  /** The endpoint is up: its names resolve, and its sandbox has a resolver on these networks. */
  join(ep: EndpointRecord, net: NetworkRecord, networks: NetworkRecord[]): Promise<void>;
  /** The endpoint goes: its names stop resolving; the sandbox keeps `remaining` networks. */
  leave(ep: EndpointRecord, net: NetworkRecord | undefined, remaining: NetworkRecord[]): Promise<void>;
  /** Makes a service answer with its VIP, or in dnsrr mode its tasks (none: it goes). */
  service(net: NetworkRecord, svc: ServiceRecord, tasks: ServiceTask[] | undefined): void;
  /** Adds (or removes) names for an endpoint's addresses alone, for containers sharing its namespace. */
  alias(net: NetworkRecord, ep: EndpointRecord, on: boolean): void;
  /** Adds (or removes) the names of an endpoint on another host of a global network. */
  remote(net: NetworkRecord, ep: RemoteEndpoint, on: boolean): void;
  close(): Promise<void>;
}

/**
 * What the controller asks of the cluster (../cluster/, over NATS) for global networks: they,
 * their services and their addresses are the cluster's, shared by every host. Absent without
 * --cluster, when a global network is SIDECAR_CLUSTER_UNAVAILABLE.
 */
export interface ClusterHooks {
  readonly hostId: string;
  /** Claims a subnet (the spec's, or the next free one of the global pool) and puts the network
   * for every host; SIDECAR_NETWORK_EXISTS when the cluster has one of that name. */
  createNetwork(
    spec: NetworkSpec,
    needs: { gateway: boolean; vni: boolean; encrypted?: boolean },
  ): Promise<{ id: string; spec: NetworkSpec; subnet: string; gateway?: string; created: string }>;
  /** Rotates an encrypted network's keys now; resolves when every host has moved to the new one. */
  rotateKeys(net: NetworkRecord): Promise<{ tag: number; ms: number }>;
  /** What `network inspect` shows of an encrypted network's keys (never a key). */
  keysStatus(net: NetworkRecord): KeysStatus | undefined;
  /** Removes it for every host: SIDECAR_NETWORK_IN_USE while any host has endpoints on it. */
  removeNetwork(net: NetworkRecord): Promise<void>;
  /** An address (and MAC) of the network's pool for this host: in a block of the subnet that
   * this host holds, claiming a new one when they are full (the one round trip). */
  requestAddress(net: NetworkRecord, req: { address?: string; mac?: boolean | string }): Promise<Allocation>;
  /** Returns an address; a block left empty is given back to the cluster. */
  releaseAddress(net: NetworkRecord, address: string): Promise<void>;
  /** The endpoint is ready (on) or gone: the other hosts learn it now, or at the next resync. */
  publish(net: NetworkRecord, ep: EndpointRecord, on: boolean): void;
  /** A service of the network for every host: its mark claimed, its record put (the VIP comes
   * from requestAddress first); SIDECAR_SERVICE_EXISTS when the cluster has it. */
  createService(net: NetworkRecord, rec: ServiceRecord): Promise<void>;
  /** SIDECAR_SERVICE_IN_USE while any host has tasks of it. */
  removeService(net: NetworkRecord, rec: ServiceRecord): Promise<void>;
  /** A firewall mark unique in the cluster, and its return. */
  requestMark(): Promise<number>;
  releaseMark(mark: number): Promise<void>;
  /** The endpoints of live hosts on a network (a service's tasks among them). */
  remoteEndpoints(net: NetworkRecord): RemoteEndpoint[];
}

export interface LbBackend {
  address: string;
  weight: number;
}

export interface LbHooks {
  /** The service's VIPs balance over exactly these backends (IPv4 and IPv6 addresses, each
   * family to its VIP); one that left is drained first. A dnsrr service with a health check
   * has its tasks probed. */
  sync(net: NetworkRecord, svc: ServiceRecord, backends: LbBackend[]): Promise<void>;
  /** The addresses of the service's tasks that its health check took out. */
  unhealthy(net: NetworkRecord, svc: ServiceRecord): Set<string>;
  remove(net: NetworkRecord, svc: ServiceRecord): Promise<void>;
  /** The network goes: so does its load-balancer sandbox. */
  removeNetwork(net: NetworkRecord): Promise<void>;
  close(): Promise<void>;
}
