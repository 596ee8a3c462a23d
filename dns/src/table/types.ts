// What the sidecar tells the name table, and what the handlers read back from it.

/** One container's endpoint on one network (libnetwork's svcMap entries for it). */
export interface EndpointSpec {
  /** The network's name: `a.b` lookups match `b` against it. */
  network: string;
  /** The container's id (unique on the network); its first 12 hex digits resolve too. */
  id: string;
  /** The container's name; an anonymous endpoint has none. */
  name?: string;
  /** Network-scoped aliases (`--network-alias`). */
  aliases?: string[];
  /** The container's hostname. */
  hostname?: string;
  /** IPv4 and IPv6 addresses of the endpoint. */
  addresses: string[];
}

export interface ServicePort {
  /** The port's name: SRV answers `_<name>._<protocol>.<service>`. */
  name: string;
  protocol: 'tcp' | 'udp';
  port: number;
}

export interface TaskSpec {
  /** The task's container name: the target of SRV answers. */
  name: string;
  addresses: string[];
  /** Only ready tasks are answered (default true). */
  ready?: boolean;
}

export interface ServiceSpec {
  network: string;
  name: string;
  aliases?: string[];
  /** `vip` (default when vips are given): the name answers the VIPs; `dnsrr`: the tasks' addresses. */
  mode?: 'vip' | 'dnsrr';
  vips?: string[];
  ports?: ServicePort[];
  tasks?: TaskSpec[];
}

export interface Address {
  text: string;
  bytes: Buffer;
}

export interface EndpointRecord {
  readonly network: string;
  readonly id: string;
  /** What a PTR query answers (name, else first alias), without the network suffix. */
  readonly ptrName: string | undefined;
  readonly addresses: readonly Address[];
  /** Lower-cased names this endpoint answers for. */
  readonly keys: readonly string[];
  /** Lower-cased reverse names of its addresses. */
  readonly ptrKeys: readonly string[];
}

export interface TaskRecord {
  readonly name: string;
  readonly addresses: readonly Address[];
}

export interface ServiceRecord {
  readonly network: string;
  readonly name: string;
  readonly mode: 'vip' | 'dnsrr';
  readonly vips: readonly Address[];
  readonly ports: readonly ServicePort[];
  /** Ready tasks only. */
  readonly tasks: readonly TaskRecord[];
  /** Lower-cased name and aliases. */
  readonly keys: readonly string[];
}

/** Read access to the table; every lookup is recorded as a dependency of the answer being built. */
export interface TableReader {
  endpointsByName(network: string, lname: string): readonly EndpointRecord[] | undefined;
  endpointsByAddress(network: string, lptr: string): readonly EndpointRecord[] | undefined;
  services(network: string, lname: string): readonly ServiceRecord[] | undefined;
}
