// For sibling packages and tests only: the pieces beneath the public surface.

export { FirewallError, type FirewallErrorCode, isFirewallError } from './firewall/errors.js';
export { type Exec, execIn } from './firewall/exec.js';
export { MemoryFirewall } from './firewall/memory.js';
export * as nftScript from './firewall/nft-script.js';
export {
  defaultOptions as defaultNftablesOptions,
  NftablesFirewall,
  type NftablesOptions,
} from './firewall/nftables.js';
export { FirewallState } from './firewall/state.js';
export type { Firewall, FwHostPort, FwNetwork, FwPort, FwProto } from './firewall/types.js';
export { writeIpv4Conf } from './kernel/checks.js';
export { ipBytes, macBytes, parsePrefix } from './kernel/rtnl/inet.js';
export * as rtnl from './kernel/rtnl/messages.js';
export { RtnlSocket } from './kernel/rtnl/socket.js';
export * as xfrmMessages from './kernel/xfrm/messages.js';
export { type Policy as XfrmPolicy, type Sa as XfrmSa, Xfrm } from './kernel/xfrm/xfrm.js';
export { type NativeNetns, native } from './sandbox/native.js';
