// Every error @cnmd/sidecar throws is a SidecarError with a stable `code`; callers and tests
// match on the code, never on the message (undici lib/core/errors.js does the same). Errors
// that come from a syscall or from the kernel over netlink carry its `errno` (a positive
// number, as in errno.h) and the original error as `cause`.

export type SidecarErrorCode =
  /** The path does not exist, is not a namespace, or is a namespace of another kind. */
  | 'SIDECAR_NETNS_INVALID'
  /** The namespace is the host's own (PID 1's) or the daemon's: never a sandbox. */
  | 'SIDECAR_NETNS_HOST'
  /** withNetns was called while already inside a namespace. */
  | 'SIDECAR_NETNS_NESTED'
  /** The function given to withNetns returned a promise: its awaited part runs outside. */
  | 'SIDECAR_NETNS_ASYNC'
  /** setns(2) into a namespace failed (EPERM without CAP_SYS_ADMIN). */
  | 'SIDECAR_NETNS_ENTER'
  /** Returning to the original namespace failed: the process can no longer enter any. */
  | 'SIDECAR_NETNS_RESTORE'
  /** The native addon is missing (not built: run `npm ci`, which builds it). */
  | 'SIDECAR_NATIVE_MISSING'
  /** Opening a socket inside a namespace failed (EADDRINUSE, EADDRNOTAVAIL...). */
  | 'SIDECAR_SOCKET'
  | 'SIDECAR_LINK_EXISTS'
  | 'SIDECAR_LINK_NOT_FOUND'
  | 'SIDECAR_ADDRESS_EXISTS'
  | 'SIDECAR_ROUTE_EXISTS'
  /** A request the kernel refused for another reason; `errno` says why. */
  | 'SIDECAR_NETLINK'
  /** An `ip` process failed (the iproute2 kernel backend); its stderr is in the message. */
  | 'SIDECAR_IPROUTE'
  /** A sysctl under /proc/sys/net could not be written. */
  | 'SIDECAR_SYSCTL'
  /** An argument (a link name, an address, a MAC) is malformed; nothing was sent. */
  | 'SIDECAR_INVALID_ARGUMENT'
  /** The daemon's state records (networks, endpoints) are unreadable or changed under it. */
  | 'SIDECAR_STATE_CORRUPT'
  | 'SIDECAR_STATE_CONFLICT'
  | 'SIDECAR_NETWORK_EXISTS'
  /** `--driver` names no driver this daemon has; the message lists those it has. */
  | 'SIDECAR_DRIVER_UNKNOWN'
  | 'SIDECAR_NETWORK_NOT_FOUND'
  /** A network with endpoints cannot be removed. */
  | 'SIDECAR_NETWORK_IN_USE'
  /** The sandbox is attached to that network already. */
  | 'SIDECAR_ENDPOINT_EXISTS'
  | 'SIDECAR_ENDPOINT_NOT_FOUND'
  /** Another sandbox uses that container name. */
  | 'SIDECAR_NAME_IN_USE'
  | 'SIDECAR_SERVICE_EXISTS'
  | 'SIDECAR_SERVICE_NOT_FOUND'
  /** `attach --service X` names a service of another network: a task is on its service's network. */
  | 'SIDECAR_SERVICE_WRONG_NETWORK'
  /** A service with tasks cannot be removed. */
  | 'SIDECAR_SERVICE_IN_USE'
  /** vip services need a load balancer data plane (IPVS or nftables). */
  | 'SIDECAR_LB_UNAVAILABLE'
  /** iptables-restore refused the marks or SNAT of an IPVS load-balancer sandbox; nothing changed. */
  | 'SIDECAR_LB_MARKS'
  /** nft (libnftables) refused a script; its error is in the message. */
  | 'SIDECAR_NFT'
  /** A host port is published already; nothing changed. */
  | 'SIDECAR_PORT_IN_USE'
  /** The cluster (NATS) cannot be reached, or the daemon runs without --cluster: a change that
   * needs it (a global network or service, a new address block) is not made. */
  | 'SIDECAR_CLUSTER_UNAVAILABLE'
  /** The kernel has no IPsec (ESP, NETLINK_XFRM, AES-GCM): an encrypted overlay cannot be made. */
  | 'SIDECAR_ESP_UNAVAILABLE'
  /** The daemon's flags or config file are wrong. */
  | 'SIDECAR_CONFIG_INVALID'
  /** A container's `cnmd.*` labels are malformed: the container is left alone. */
  | 'SIDECAR_DOCKER_LABEL'
  /** A label names a missing network, and as many networks as allowed were made from labels. */
  | 'SIDECAR_DOCKER_NETWORK_LIMIT'
  /** The Docker engine cannot be reached over its socket (or the connection broke). */
  | 'SIDECAR_DOCKER_UNAVAILABLE'
  /** The Docker engine answered with an error status, or with something unreadable. */
  | 'SIDECAR_DOCKER_API';

export class SidecarError extends Error {
  readonly code: SidecarErrorCode;
  /** The errno of the syscall or netlink request that failed, when one did. */
  readonly errno: number | undefined;

  constructor(code: SidecarErrorCode, message: string, options?: { cause?: unknown; errno?: number }) {
    super(message, options);
    this.name = 'SidecarError';
    this.code = code;
    this.errno = options?.errno ?? errnoOf(options?.cause);
  }
}

export function isSidecarError(err: unknown, code?: SidecarErrorCode): err is SidecarError {
  return err instanceof SidecarError && (code === undefined || err.code === code);
}

/** Node's system errors carry a negative `errno` (uv), the addon's a positive one. */
function errnoOf(cause: unknown): number | undefined {
  const n = (cause as { errno?: unknown } | undefined)?.errno;
  return typeof n === 'number' ? Math.abs(n) : undefined;
}

/** `CODE: message` of any error, for a log line. */
export function describeError(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' ? `${code}: ${message}` : message;
}

export type ApiErrorCode =
  | 'API_BAD_REQUEST'
  | 'API_INVALID_ARGUMENT'
  | 'API_UNAUTHORIZED'
  | 'API_NOT_FOUND'
  | 'API_CONFLICT'
  | 'API_METHOD_NOT_ALLOWED'
  | 'API_TOO_LARGE'
  | 'API_UNAVAILABLE'
  | 'API_INTERNAL';

/** An error of the API's own (API_*), or any code with the HTTP status it is answered with; made
 * by the API, the CLI and the validation of bodies (API_INVALID_ARGUMENT) wherever that runs. */
export class ApiError extends Error {
  readonly code: string;
  /** The HTTP status when it is not the one of its code (api/errors.ts statusOf). */
  readonly status: number | undefined;

  constructor(code: ApiErrorCode | string, message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

/** A body or option that is not valid: API_INVALID_ARGUMENT, naming the field. */
export const invalid = (message: string) => new ApiError('API_INVALID_ARGUMENT', message);
