export { type Clock, systemClock } from './clock.js';
export { type Conntrack, type ConntrackToolOptions, conntrackTool } from './conntrack.js';
export { IpvsDataPlane, type IpvsDataPlaneOptions } from './dataplanes/ipvs.js';
export { MemoryDataPlane } from './dataplanes/memory.js';
export { NftablesDataPlane, type NftablesDataPlaneOptions } from './dataplanes/nftables.js';
export { healthChannel, type LbHealthEvent, type LbSyncEvent, syncChannel } from './diagnostics.js';
export { isLbError, LbError, type LbErrorCode, LbNetlinkError } from './errors.js';
export type { Exec } from './exec.js';
export { defaultProbe, type HealthProbe } from './health.js';
export { defaultOptions, LoadBalancer, type LoadBalancerOptions } from './load-balancer.js';
export type {
  BackendSpec,
  EndpointMode,
  HealthCheck,
  HealthCheckSpec,
  NetworkRef,
  PortSpec,
  Service,
  ServiceSpec,
} from './service.js';
export type {
  ApplyHint,
  ApplyResult,
  Backend,
  DataPlane,
  Proto,
  Scheduler,
  ServicePort,
  VirtualService,
} from './types.js';
