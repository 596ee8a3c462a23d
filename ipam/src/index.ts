export { IpamError, type IpamErrorCode, isIpamError } from './errors.js';
export {
  type AddressRequest,
  type Allocation,
  type IdKind,
  Ipam,
  type PoolInfo,
  type PoolRequest,
} from './ipam.js';
export type { MacStrategy } from './mac.js';
export { defaultOptions, type IpamOptions, type PoolSpec } from './options.js';
export type { AddressSpace } from './pool.js';
export { FileStore } from './stores/file.js';
export { MemoryStore } from './stores/memory.js';
export type { Store, StoreEntry, StoreOp, StoreResult } from './stores/types.js';
