// Errors the admin API returns as { code, message } with an HTTP status chosen by code.

export type ApiErrorCode =
  | 'API_BAD_REQUEST'
  | 'API_INVALID_ARGUMENT'
  | 'API_NOT_FOUND'
  | 'API_CONFLICT'
  | 'API_METHOD_NOT_ALLOWED'
  | 'API_TOO_LARGE'
  | 'API_UNAVAILABLE'
  | 'API_INTERNAL';

export class ApiError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: ApiErrorCode | string, message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApiError';
    this.code = code;
    this.status = status ?? statusOf(code);
  }
}

/** The HTTP status for an error code of any package: what a client can do about it. */
export function statusOf(code: string): number {
  if (
    code === 'API_BAD_REQUEST' ||
    code === 'API_INVALID_ARGUMENT' ||
    /_INVALID_|_OUT_OF_RANGE$|_WRONG_NETWORK$/.test(code)
  ) {
    return 400;
  }
  if (code.endsWith('_NOT_FOUND')) return 404;
  if (code === 'API_METHOD_NOT_ALLOWED') return 405;
  if (code === 'API_TOO_LARGE') return 413;
  if (/_(IN_USE|EXISTS|OVERLAP|CONFLICT|EXHAUSTED|RESERVED)$|^API_CONFLICT$|_NO_AVAILABLE_POOL$/.test(code)) return 409;
  if (code === 'API_UNAVAILABLE') return 503;
  return 500;
}

export const invalid = (message: string) => new ApiError('API_INVALID_ARGUMENT', message);
