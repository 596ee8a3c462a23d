// The contract of @cnmd/lb's data planes (ipvs, nftables, memory): the desired state of one
// load-balancer sandbox as plain data, applied as a difference. DESIGN.md, "Load balancing".

export type Scheduler = 'rr' | 'wrr' | 'lc' | 'sh';
export type Proto = 'tcp' | 'udp';

export interface ServicePort {
  proto: Proto;
  /** The port on the VIP. */
  port: number;
  /** The port on the backends; the same as `port` when absent. */
  targetPort?: number;
}

export interface Backend {
  /** A task's address on the network (IPv4 or IPv6, the VIP's family). */
  address: string;
  /** 0 drains: no new connections, established ones go on. 1 by default. */
  weight: number;
}

/** One service on one network, as a data plane programs it. */
export interface VirtualService {
  /** The firewall mark (from 256) that keys the service: IPVS fwmark services, mangle marks. */
  mark: number;
  /** The service's virtual IP. */
  vip: string;
  /** The ports balanced; empty: every port of the VIP (fwmark services do that). */
  ports: ServicePort[];
  scheduler: Scheduler;
  backends: Backend[];
}

export interface ApplyResult {
  /** What changed, counted in the data plane's own units (services and backends). */
  added: number;
  changed: number;
  removed: number;
}

export interface DataPlane {
  readonly name: 'ipvs' | 'nftables' | 'memory';
  /**
   * Makes the data plane hold exactly `desired`, sending only the difference from what it
   * holds now (never a flush), atomically where the kernel allows. Resolves when applied.
   */
  apply(desired: readonly VirtualService[]): Promise<ApplyResult>;
  /** What the kernel holds now, read back (not what was last sent). */
  read(): Promise<VirtualService[]>;
  /** Removes everything it programmed. */
  reset(): Promise<void>;
  close(): Promise<void>;
}
