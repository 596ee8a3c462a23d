// The public surface of @cnmd/sidecar so far: entering network namespaces.
export { isSidecarError, SidecarError, type SidecarErrorCode } from './errors.js';
export { currentNetns, NetnsHandle, openNetns, withNetns } from './netns/netns.js';
export { bindUdpIn, listenTcpIn } from './netns/sockets.js';
