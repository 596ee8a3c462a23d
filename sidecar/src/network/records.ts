// What the daemon remembers about networks and endpoints, next to IPAM's allocations.
import type { DnsSettings, NetworkSpec, PortSpec, ServiceSpec } from './spec.js';

export interface NetworkRecord {
  id: string;
  spec: NetworkSpec;
  /** The bridge this host made for the network, or the macvlan parent. */
  device: string;
  pool4: string;
  pool6?: string;
  subnet: string;
  gateway?: string;
  subnet6?: string;
  gateway6?: string;
  created: string;
  /** `creating` until every part exists: a record still creating after a crash is undone. */
  state: 'creating' | 'ready';
  /** Made by the Docker source for a label that named it (counted against dockerMaxNetworks). */
  origin?: 'docker';
}

export interface EndpointRecord {
  id: string;
  /** The container's id: stable per sandbox; its first 12 hex digits resolve in DNS. */
  containerId: string;
  /** The path the sandbox was given by, and its namespace identity. */
  sandbox: string;
  sandboxKey: string;
  netnsName?: string;
  network: string;
  name?: string;
  aliases: string[];
  hostname?: string;
  /** Inside the sandbox (eth0…) and on the host (the veth's host end). */
  ifname: string;
  hostIf: string;
  mac?: string;
  ip?: string;
  ip6?: string;
  publish: PortSpec[];
  /** Whether this endpoint gave the sandbox its default route. */
  defaultRoute: boolean;
  /** Asked to give the default route even when another network gave one (--default-route). */
  wantDefault?: boolean;
  /** `attaching` until every part exists: one still attaching after a crash is undone. */
  state: 'attaching' | 'ready';
  /** Docker's none, host and container:<name> modes: no endpoint of a network (modes.ts). */
  mode?: 'none' | 'host' | 'container';
  /** container mode: the name of the container whose namespace this one shares. */
  shares?: string;
  /** The endpoint of the network's load-balancer sandbox (no DNS of its own). */
  lb?: boolean;
  /** The endpoint is a task of this service (on its network), with this weight. */
  service?: string;
  weight?: number;
  /** Made by the Docker source for the container `containerId` (docker/source.ts). */
  origin?: 'docker';
  /** The sandbox's own resolver settings, given with this attach (the latest given wins). */
  dns?: DnsSettings;
}

/** What this host knows of an endpoint on a global network of another host (from the cluster). */
export interface RemoteEndpoint {
  /** The host it is on. */
  host: string;
  id: string;
  /** The network's id. */
  network: string;
  containerId: string;
  name?: string;
  aliases: string[];
  hostname?: string;
  ip?: string;
  ip6?: string;
  mac?: string;
  service?: string;
  weight?: number;
  /** Its host's underlay address (the VTEP of an overlay). */
  vtep?: string;
}

/** A task of a service as DNS and the load balancer see it: a local endpoint or a remote one. */
export type ServiceTask = Pick<EndpointRecord, 'containerId' | 'name' | 'ip' | 'ip6' | 'weight'>;

export interface ServiceRecord {
  id: string;
  spec: ServiceSpec;
  /** The network's id. */
  network: string;
  /** vip mode: the virtual IP (from the network's pool) and the firewall mark that keys it. */
  vip?: string;
  mark?: number;
  /** vip mode on a dual-stack network: the IPv6 VIP and its own mark (a second LB service). */
  vip6?: string;
  mark6?: number;
}

/** Whatever publishes host ports: an endpoint (its addresses) or a service (its VIPs). */
export type PublishTarget = Pick<EndpointRecord, 'network' | 'publish' | 'ip' | 'ip6'>;
