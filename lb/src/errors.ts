// Every error @cnmd/lb throws is an LbError with a stable `code`; callers and tests match on
// the code, never on the message (undici lib/core/errors.js; ipam/src/errors.ts does the same).

export type LbErrorCode =
  /** A malformed argument (name, address, port, weight, option); nothing changed. */
  | 'LB_INVALID_ARGUMENT'
  /** The scheduler is not one of rr, wrr, lc, sh. */
  | 'LB_INVALID_SCHEDULER'
  /** The VIP is not inside any subnet of the service's network (or is its network address). */
  | 'LB_VIP_OUT_OF_SUBNET'
  /** Another service already balances this VIP, protocol and port (or every port of the VIP). */
  | 'LB_PORT_IN_USE'
  /** A backend's address is not on the service's network (another network, or outside its subnets). */
  | 'LB_BACKEND_WRONG_NETWORK'
  /** A service of that name exists already (on this load balancer). */
  | 'LB_SERVICE_EXISTS'
  /** No service of that name. */
  | 'LB_SERVICE_NOT_FOUND'
  /** No backend of that address in the service. */
  | 'LB_BACKEND_NOT_FOUND'
  /** The firewall mark is taken by another service, or no mark is left. */
  | 'LB_MARK_IN_USE'
  /** `nft -f -` refused the transaction (atomic: nothing applied); stderr in the message. */
  | 'LB_NFT'
  /** The data plane refused or failed a change; the load balancer's state is as before. */
  | 'LB_DATAPLANE'
  /** Deleting conntrack entries failed (the backend is removed all the same). */
  | 'LB_CONNTRACK'
  /** The load balancer or data plane was closed. */
  | 'LB_CLOSED'
  /** The kernel has no IPVS generic netlink family (no ip_vs module): use nftables. */
  | 'LB_IPVS_UNAVAILABLE'
  /** The kernel refused a netlink request (`errno` holds its errno), or the socket failed. */
  | 'LB_NETLINK';

export class LbError extends Error {
  readonly code: LbErrorCode;

  constructor(code: LbErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LbError';
    this.code = code;
  }
}

/** A netlink refusal: `errno` is the kernel's (positive) errno, 0 when the socket itself failed. */
export class LbNetlinkError extends LbError {
  readonly errno: number;

  constructor(message: string, errno: number, options?: { cause?: unknown }) {
    super('LB_NETLINK', message, options);
    this.errno = errno;
  }
}

export function isLbError(err: unknown, code?: LbErrorCode): err is LbError {
  return err instanceof LbError && (code === undefined || err.code === code);
}

export const invalid = (message: string): LbError => new LbError('LB_INVALID_ARGUMENT', message);
