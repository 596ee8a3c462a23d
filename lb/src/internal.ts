// For siblings and tests only (the sidecar, e2e, benches): the pure parts behind the data planes.

export { type Diff, desiredState, diff } from './dataplanes/nft-diff.js';
export { parseListing, servicesOf } from './dataplanes/nft-read.js';
export { chainRules, type Held, script, serviceElements, skeleton, TABLE } from './dataplanes/nft-script.js';
export { NftSession } from './dataplanes/nft-session.js';
export { execIn } from './exec.js';
export { HealthMonitor } from './health.js';
export { canonical, parseAddr, parseCidr } from './ip.js';
export * as ipvsCodec from './ipvs/codec.js';
export { GenlSocket } from './ipvs/genl-socket.js';
export { Ipvs } from './ipvs/ipvs.js';
export { portsClash, toVirtualService, validateService } from './service.js';
export { MAX_SLOTS, slots } from './slots.js';
