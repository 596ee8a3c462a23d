// What the parts of the controller (services.ts, modes.ts) see of it: the controller implements
// this, and they import only this, so none of them imports the controller back.
import type { Ipam } from '@cnmd/ipam';
import type { Drivers, NetworkDriver } from './driver.js';
import type { DnsHooks, FirewallHooks } from './hooks.js';
import type { EndpointRecord, NetworkRecord } from './records.js';
import type { Records } from './store.js';

export interface NetworkContext {
  readonly networks: Records<NetworkRecord>;
  readonly endpoints: Records<EndpointRecord>;
  readonly ipam: Ipam;
  readonly drivers: Drivers;
  readonly firewall: FirewallHooks;
  readonly dns: DnsHooks;
  /** A ready network by name or id; SIDECAR_NETWORK_NOT_FOUND. */
  network(nameOrId: string): NetworkRecord;
  driverOf(net: NetworkRecord): NetworkDriver;
  /** A catch handler that logs what failed, for failures no caller hears of. */
  logged(what: string): (err: unknown) => void;
}
