// The CLI's side of the admin API.
import { request } from 'node:http';
import { ApiError } from '../errors.js';

export class ApiClient {
  readonly socket: string;

  constructor(socket: string) {
    this.socket = socket;
  }

  call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socket,
          method,
          path: `/v1${path}`,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let data: unknown;
            try {
              data = text ? JSON.parse(text) : undefined;
            } catch {
              data = { code: 'API_INTERNAL', message: text };
            }
            if ((res.statusCode ?? 500) >= 400) {
              const e = data as { code?: string; message?: string };
              reject(new ApiError(e?.code ?? 'API_INTERNAL', e?.message ?? `HTTP ${res.statusCode}`, res.statusCode));
            } else {
              resolve(data as T);
            }
          });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'is the daemon running?' : err.message;
        reject(new ApiError('API_UNAVAILABLE', `cannot reach cnmd at ${this.socket}: ${why}`, 503, { cause: err }));
      });
      req.end(payload);
    });
  }
}
