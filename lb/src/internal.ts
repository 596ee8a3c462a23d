// For siblings and tests only (the sidecar, e2e, benches): the pure parts behind the data planes.

export {
  chainRules,
  desiredState,
  diff,
  type Held,
  parseListing,
  script,
  servicesOf,
  skeleton,
  TABLE,
} from './dataplanes/nft-script.js';
export { execIn } from './exec.js';
export { HealthMonitor } from './health.js';
export { canonical, parseAddr, parseCidr } from './ip.js';
export * as ipvsCodec from './ipvs/codec.js';
export { GenlSocket } from './ipvs/genl-socket.js';
export { Ipvs } from './ipvs/ipvs.js';
export { portsClash, toVirtualService, validateService } from './service.js';
export { MAX_SLOTS, slots } from './slots.js';
