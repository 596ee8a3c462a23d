// For sibling packages and tests only: the pieces beneath the public surface.
export { type NativeNetns, native } from './netns/native.js';
