// The admin API: HTTP + JSON on a unix socket (mode 0600), versioned paths, errors as
// { code, message }. A TCP listener only when configured, and then every request on it needs
// the bearer token (the socket's file mode is its access control; TCP has none of its own).
import { createHash, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { ApiError, SidecarError } from '../errors.js';
import { parseAttachSpec, parseNetworkSpec } from '../network/parse.js';
import { parseServiceSpec } from '../network/parse-service.js';
import type { Controller } from '../network/spec.js';
import { statusOf } from './errors.js';

export const API_VERSION = 'v1';
const MAX_BODY = 1024 * 1024;
/**
 * A client has this long to send its headers, and its whole request: a slow one (slowloris, a
 * byte a second) holds a connection no longer. Node's defaults are 60 s and 300 s, checked
 * every 30 s; a request to this API is a few hundred bytes, at most 1 MiB.
 */
const TIMEOUTS = { headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1000 };

type Route = {
  method: string;
  path: RegExp;
  run: (
    c: Controller,
    m: RegExpExecArray,
    body: unknown,
    q: URLSearchParams,
    o: ApiServerOptions,
  ) => unknown | Promise<unknown>;
  status?: number;
};

const routes: Route[] = [
  { method: 'GET', path: /^\/v1\/networks$/, run: (c) => c.listNetworks() },
  { method: 'POST', path: /^\/v1\/networks$/, run: (c, _, b) => c.createNetwork(parseNetworkSpec(b)), status: 201 },
  { method: 'GET', path: /^\/v1\/networks\/([^/]+)$/, run: (c, m) => c.inspectNetwork(m[1]!) },
  { method: 'DELETE', path: /^\/v1\/networks\/([^/]+)$/, run: (c, m) => c.removeNetwork(m[1]!), status: 204 },
  { method: 'POST', path: /^\/v1\/networks\/([^/]+)\/rotate-key$/, run: (c, m) => c.rotateKey(m[1]!) },
  { method: 'GET', path: /^\/v1\/endpoints$/, run: (c) => c.listEndpoints() },
  { method: 'POST', path: /^\/v1\/endpoints$/, run: (c, _, b) => c.attach(parseAttachSpec(b)), status: 201 },
  {
    method: 'DELETE',
    path: /^\/v1\/endpoints$/,
    run: (c, _, __, q) => {
      const sandbox = q.get('sandbox');
      if (!sandbox) throw new ApiError('API_INVALID_ARGUMENT', 'sandbox is required');
      return c.detach(sandbox, q.get('network') ?? undefined);
    },
  },
  { method: 'GET', path: /^\/v1\/containers\/([^/]+)$/, run: (c, m) => c.inspectContainer(m[1]!) },
  { method: 'GET', path: /^\/v1\/services$/, run: (c) => c.listServices() },
  { method: 'POST', path: /^\/v1\/services$/, run: (c, _, b) => c.createService(parseServiceSpec(b)), status: 201 },
  {
    method: 'GET',
    path: /^\/v1\/services\/([^/]+)$/,
    run: (c, m, _, q) => c.inspectService(m[1]!, q.get('network') ?? undefined),
  },
  {
    method: 'DELETE',
    path: /^\/v1\/services\/([^/]+)$/,
    run: (c, m, _, q) => c.removeService(m[1]!, q.get('network') ?? undefined),
    status: 204,
  },
  { method: 'GET', path: /^\/v1\/health$/, run: (_c, _m, _b, _q, o) => ({ status: 'ok', ...o.health?.() }) },
  {
    method: 'GET',
    path: /^\/v1\/cluster$/,
    run: (_c, _m, _b, _q, o) => {
      if (!o.cluster) throw new ApiError('API_NOT_FOUND', 'this daemon is in no cluster (--cluster)');
      return o.cluster();
    },
  },
];

export interface ApiServerOptions {
  controller: Controller;
  /** Unix socket path. */
  socket: string;
  /** Optional TCP listener; off by default. */
  tcp?: { host: string; port: number };
  /** The bearer token every TCP request must carry; required with `tcp`. */
  token?: string;
  /** More to tell in GET /v1/health (the load balancers' data planes). */
  health?: () => Record<string, unknown>;
  /** GET /v1/cluster: the cluster's hosts and the connection (with --cluster). */
  cluster?: () => unknown;
}

export class ApiServer {
  readonly #options: ApiServerOptions;
  readonly #servers: Server[] = [];
  #closed = false;

  readonly #token: Buffer | undefined;

  constructor(options: ApiServerOptions) {
    if (options.tcp && !options.token) {
      throw new SidecarError('SIDECAR_CONFIG_INVALID', 'the admin API over TCP needs a token (--api-token-file)');
    }
    this.#options = options;
    this.#token = options.token === undefined ? undefined : digest(options.token);
  }

  async start(): Promise<void> {
    const { socket, tcp } = this.#options;
    await mkdir(dirname(socket), { recursive: true, mode: 0o700 });
    await rm(socket, { force: true }); // a socket file left by a killed daemon
    const unix = this.#server(false);
    await listen(unix, { path: socket });
    await chmod(socket, 0o600);
    if (tcp) await listen(this.#server(true), tcp);
  }

  /** The TCP address when one is configured (port 0 picks one). */
  tcpAddress(): { address: string; port: number } | undefined {
    const a = this.#servers[1]?.address();
    return a && typeof a === 'object' ? { address: a.address, port: a.port } : undefined;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(
      this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()).closeAllConnections())),
    );
    await rm(this.#options.socket, { force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #server(tcp: boolean): Server {
    const server = createServer(TIMEOUTS, (req, res) => {
      if (tcp && !this.#authorized(req)) {
        res.setHeader('www-authenticate', 'Bearer realm="cnmd"');
        reply(res, 401, { code: 'API_UNAUTHORIZED', message: 'a bearer token is required (Authorization: Bearer …)' });
        return;
      }
      this.#handle(req, res).catch((err) => reply(res, 500, { code: 'API_INTERNAL', message: String(err) }));
    });
    this.#servers.push(server);
    return server;
  }

  /** Compared in constant time: digests of equal length, whatever was sent. */
  #authorized(req: IncomingMessage): boolean {
    const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
    return m !== null && this.#token !== undefined && timingSafeEqual(digest(m[1]!), this.#token);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = parseUrl(req.url);
      const matching = routes.filter((r) => r.path.test(url.pathname));
      if (matching.length === 0) throw new ApiError('API_NOT_FOUND', `no such path ${url.pathname}`);
      const route = matching.find((r) => r.method === req.method);
      if (!route) throw new ApiError('API_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`);
      // A length past the limit is refused before any of the body is read (and the connection
      // closed, since the rest of it would follow): a client declaring 1 GiB used to be waited for.
      if (Number(req.headers['content-length']) > MAX_BODY) throw tooLarge();
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      const m = route.path.exec(url.pathname)!;
      m.forEach((v, i) => {
        if (i > 0 && v !== undefined) m[i] = decode(v);
      });
      const result = await route.run(this.#options.controller, m, body, url.searchParams, this.#options);
      reply(res, route.status ?? 200, result);
    } catch (err) {
      const e = err as { code?: unknown; message?: string; status?: number };
      const code = typeof e.code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(e.code) ? e.code : 'API_INTERNAL';
      // The body was not read to its end: the connection cannot carry another request.
      if (code === 'API_TOO_LARGE') res.setHeader('connection', 'close');
      reply(res, e.status ?? statusOf(code), { code, message: e.message ?? String(err) });
    }
  }
}

const digest = (token: string): Buffer => createHash('sha256').update(token).digest();

function parseUrl(raw: string | undefined): URL {
  try {
    return new URL(raw ?? '/', 'http://cnmd');
  } catch {
    throw new ApiError('API_BAD_REQUEST', `not a request path: ${JSON.stringify(raw)}`);
  }
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError('API_BAD_REQUEST', `a malformed %-escape in ${JSON.stringify(segment)}`);
  }
}

/**
 * The accept queue: Node's default of 511 made the 512th of many clients connecting at once to
 * the unix socket fail with EAGAIN (a unix socket does not retry as TCP's SYN does). The kernel
 * caps it at net.core.somaxconn (4096 by default since Linux 5.4).
 */
const BACKLOG = 4096;

function listen(server: Server, where: { path: string } | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ ...where, backlog: BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

const tooLarge = () => new ApiError('API_TOO_LARGE', `request body over ${MAX_BODY} bytes`);

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  } catch (err) {
    throw new ApiError('API_BAD_REQUEST', `the request body is not JSON: ${(err as Error).message}`);
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  if (status === 204 || body === undefined) {
    res.writeHead(status === 200 ? 204 : status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
