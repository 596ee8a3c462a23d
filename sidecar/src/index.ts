// The public surface of @cnmd/sidecar so far: entering namespaces and the kernel layer.
export { isSidecarError, SidecarError, type SidecarErrorCode } from './errors.js';
export { IprouteKernel } from './kernel/backends/iproute.js';
export { NetlinkKernel } from './kernel/backends/netlink.js';
export type {
  Address,
  Kernel,
  Link,
  LinkChange,
  LinkOptions,
  MacvlanSpec,
  NetnsLinks,
  Route,
  VethSpec,
  VxlanSpec,
} from './kernel/types.js';
export { currentNetns, NetnsHandle, openNetns, withNetns } from './sandbox/netns.js';
export { bindUdpIn, listenTcpIn } from './sandbox/sockets.js';
