// The metrics listener (--metrics-addr): /metrics for Prometheus, the status page at /, and its
// JSON at /status.json. Read-only: GET and HEAD, nothing else; nothing on it changes state.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SidecarError } from '../errors.js';
import type { StatusDoc } from './status.js';
import { STATUS_PAGE_CSP, statusPage } from './status-page.js';

export interface MetricsServerOptions {
  host: string;
  port: number;
  /** Serves /metrics (the Prometheus exporter's handler). */
  metrics: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  status: () => StatusDoc;
}

export class MetricsServer {
  readonly #o: MetricsServerOptions;
  readonly #server: http.Server;

  constructor(o: MetricsServerOptions) {
    this.#o = o;
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    // A scrape every few seconds keeps its connection; nothing lingers past a minute.
    this.#server.keepAliveTimeout = 60_000;
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (cause: NodeJS.ErrnoException) =>
        reject(
          new SidecarError(
            'SIDECAR_CONFIG_INVALID',
            `metricsAddr ${this.#o.host}:${this.#o.port}: cannot listen (${cause.code ?? cause.message})`,
            { cause },
          ),
        ),
      );
      this.#server.listen(this.#o.port, this.#o.host, () => resolve());
    });
  }

  get address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    if (!this.#server.listening) return;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('read-only\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (path === '/metrics') {
        this.#o.metrics(req, res);
        return;
      }
      if (path === '/status.json') {
        const body = JSON.stringify(this.#o.status());
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
        return;
      }
      if (path === '/') {
        res
          .writeHead(200, {
            'content-type': 'text/html; charset=utf-8',
            'cache-control': 'no-store',
            'content-security-policy': STATUS_PAGE_CSP,
            'x-content-type-options': 'nosniff',
            'referrer-policy': 'no-referrer',
          })
          .end(statusPage(this.#o.status()));
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /, /status.json, /metrics\n');
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`);
    }
  }
}
