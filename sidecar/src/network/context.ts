// What the parts of the controller (networks.ts, services.ts, modes.ts) see of it: the controller implements
// this, and they import only this, so none of them imports the controller back.
import type { AddressRequest, Allocation, Ipam } from '@cnmd/ipam';
import type { NetnsLinks } from '../kernel/types.js';
import type { Drivers, NetworkDriver } from './driver.js';
import type { ClusterHooks, DnsHooks, FirewallHooks } from './hooks.js';
import type { EndpointRecord, NetworkRecord, ServiceRecord } from './records.js';
import type { Records } from './store.js';

export interface NetworkContext {
  readonly networks: Records<NetworkRecord>;
  readonly endpoints: Records<EndpointRecord>;
  readonly ipam: Ipam;
  readonly drivers: Drivers;
  readonly firewall: FirewallHooks;
  readonly dns: DnsHooks;
  readonly cluster: ClusterHooks | undefined;
  readonly serviceRecords: Records<ServiceRecord>;
  /** The links of the namespace the daemon runs in. */
  host(): Promise<NetnsLinks>;
  /** A ready network by name or id; SIDECAR_NETWORK_NOT_FOUND. */
  network(nameOrId: string): NetworkRecord;
  driverOf(net: NetworkRecord): NetworkDriver;
  /** An IPv4 address of a network for this host (a global network's from this host's blocks). */
  requestAddress(net: NetworkRecord, req: AddressRequest): Promise<Allocation>;
  releaseAddress(net: NetworkRecord, address: string): Promise<void>;
  /** A catch handler that logs what failed, for failures no caller hears of. */
  logged(what: string): (err: unknown) => void;
}
