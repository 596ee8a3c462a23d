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

/**
 * What the caller knows changed since its previous apply() that resolved, so that one change
 * among 10,000 services costs the data plane that change and not a pass over all of them. Every
 * service of `desired` not in `changed` is the one that apply() was given (the same object, or
 * equal). Optional: a data plane that cannot vouch for the previous apply (it failed, or a read
 * found the kernel changed behind its back), or whose hint does not add up to `desired`, ignores
 * the hint and compares everything; so does every apply after one that failed.
 */
export interface ApplyHint {
  /** The services of `desired` that are new or differ from the previous apply. */
  changed: readonly VirtualService[];
  /** The marks of the services that were in the previous apply and are not in `desired`. */
  removed: readonly number[];
}

export interface DataPlane {
  readonly name: 'ipvs' | 'nftables' | 'memory';
  /**
   * Makes the data plane hold exactly `desired`, sending only the difference from what it
   * holds now (never a flush), atomically where the kernel allows. Resolves when applied.
   * `hint`, when given, names the difference from the previous apply (see ApplyHint).
   */
  apply(desired: readonly VirtualService[], hint?: ApplyHint): Promise<ApplyResult>;
  /** What the kernel holds now, read back (not what was last sent). */
  read(): Promise<VirtualService[]>;
  /** Removes everything it programmed. */
  reset(): Promise<void>;
  close(): Promise<void>;
}
