// For sibling packages and tests only: helpers that are not part of the public surface.
export { BitmapAllocator } from './allocators/bitmap-allocator.js';
export { SparseAllocator } from './allocators/sparse-allocator.js';
export type { SlotAllocator } from './allocators/types.js';
export { parseCidr } from './ip.js';
export { formatMac, ipDerivedMac, parseMac, randomMac } from './mac.js';
export { KvState } from './stores/kv-state.js';
