// What the controller asks of the firewall and of DNS, in its own terms (records). The
// daemon wires real ones (firewall/hooks.ts over nftables, dns/wiring.ts over @cnmd/dns).

import type { EndpointRecord, NetworkRecord, PublishTarget, ServiceRecord } from './records.js';
import type { PortSpec } from './spec.js';

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
  service(net: NetworkRecord, svc: ServiceRecord, tasks: EndpointRecord[] | undefined): void;
  /** Adds (or removes) names for an endpoint's addresses alone, for containers sharing its namespace. */
  alias(net: NetworkRecord, ep: EndpointRecord, on: boolean): void;
  close(): Promise<void>;
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
