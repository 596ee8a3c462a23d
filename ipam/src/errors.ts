// Every error @cnmd/ipam throws is an IpamError with a stable `code`; callers and tests
// match on the code, never on the message (undici lib/core/errors.js does the same).

export type IpamErrorCode =
  | 'IPAM_INVALID_CIDR'
  | 'IPAM_INVALID_ADDRESS'
  | 'IPAM_INVALID_MAC'
  | 'IPAM_INVALID_RANGE'
  | 'IPAM_INVALID_OPTION'
  | 'IPAM_POOL_OVERLAP'
  | 'IPAM_POOL_NOT_FOUND'
  | 'IPAM_POOL_IN_USE'
  | 'IPAM_POOL_EXHAUSTED'
  | 'IPAM_NO_AVAILABLE_POOL'
  | 'IPAM_ADDRESS_IN_USE'
  | 'IPAM_ADDRESS_OUT_OF_RANGE'
  | 'IPAM_ADDRESS_RESERVED'
  | 'IPAM_MAC_IN_USE'
  | 'IPAM_ID_IN_USE'
  | 'IPAM_ID_OUT_OF_RANGE'
  | 'IPAM_ID_EXHAUSTED'
  | 'IPAM_STORE_CONFLICT'
  | 'IPAM_STORE_CORRUPT'
  | 'IPAM_STORE_VERSION'
  | 'IPAM_STORE_LOCKED'
  | 'IPAM_STORE_IO'
  | 'IPAM_STORE_CLOSED';

export class IpamError extends Error {
  readonly code: IpamErrorCode;

  constructor(code: IpamErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IpamError';
    this.code = code;
  }
}

export function isIpamError(err: unknown, code?: IpamErrorCode): err is IpamError {
  return err instanceof IpamError && (code === undefined || err.code === code);
}
