// One admin API request that never throws: the status and the parsed body, or how the
// connection failed. `sent: false` when the request cannot have reached the daemon (no one
// listened on the socket): then it changed nothing, as a refused connection cannot.
import { request } from 'node:http';

export interface ApiOutcome<T = Record<string, unknown>> {
  status?: number;
  body?: T;
  /** The connection's error code (ECONNRESET, ECONNREFUSED, ENOENT, TIMEOUT...). */
  error?: string;
  /** false only when the daemon cannot have seen the request. */
  sent: boolean;
}

export function apiCall<T = Record<string, unknown>>(
  socket: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 120_000,
): Promise<ApiOutcome<T>> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: ApiOutcome<T>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const req = request(
      { socketPath: socket, method, path, agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('error', (e: NodeJS.ErrnoException) => finish({ error: e.code ?? e.message, sent: true }));
        res.on('end', () => {
          let parsed: T | undefined;
          try {
            parsed = text ? (JSON.parse(text) as T) : undefined;
          } catch {
            parsed = { text } as T;
          }
          finish({ status: res.statusCode ?? 0, ...(parsed === undefined ? {} : { body: parsed }), sent: true });
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish({ error: 'TIMEOUT', sent: true });
    }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? e.message;
      finish({ error: code, sent: !(code === 'ECONNREFUSED' || code === 'ENOENT') });
    });
    req.end(payload);
  });
}
