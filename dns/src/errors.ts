// Every error @cnmd/dns throws or reports is a DnsError with a stable `code`; callers and tests
// match on the code, never on the message (undici lib/core/errors.js does the same).

export type DnsErrorCode =
  | 'DNS_INVALID_OPTION'
  | 'DNS_INVALID_NAME'
  | 'DNS_INVALID_ADDRESS'
  | 'DNS_INVALID_RECORD'
  | 'DNS_INVALID_UPSTREAM'
  | 'DNS_SANDBOX_EXISTS'
  | 'DNS_SANDBOX_NOT_FOUND'
  | 'DNS_CLOSED'
  | 'DNS_MALFORMED'
  | 'DNS_UPSTREAM_TIMEOUT'
  | 'DNS_UPSTREAM_ERROR'
  | 'DNS_UPSTREAM_MISMATCH';

export class DnsError extends Error {
  readonly code: DnsErrorCode;

  constructor(code: DnsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DnsError';
    this.code = code;
  }
}

export function isDnsError(err: unknown, code?: DnsErrorCode): err is DnsError {
  return err instanceof DnsError && (code === undefined || err.code === code);
}
