// The Docker engine API over its unix socket, with undici: the few calls the source needs.
// The API version is negotiated as the docker CLI does it: the lower of the engine's
// ApiVersion and the one this code is written against (paths are /v<version>/...).
import { Client, type Dispatcher } from 'undici';
import { SidecarError } from '../errors.js';
import { type EventFilters, EventStream } from './events.js';

/** The API this code speaks: dockerd 20.10's; newer engines accept it. */
export const API_VERSION = '1.41';

export interface DockerClientOptions {
  /** The engine's socket, e.g. /var/run/docker.sock. */
  socket: string;
  /** Ask for at most this version (default API_VERSION). */
  apiVersion?: string;
}

/** Compares dotted API versions: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export class DockerClient {
  readonly socket: string;
  readonly #want: string;
  #version: string | undefined;
  #client: Client;

  constructor(o: DockerClientOptions) {
    this.socket = o.socket;
    this.#want = o.apiVersion ?? API_VERSION;
    this.#client = this.#newClient();
  }

  #newClient(): Client {
    return new Client('http://docker', { socketPath: this.socket, keepAliveTimeout: 10_000 });
  }

  /** The negotiated version, once `negotiate()` ran. */
  get version(): string | undefined {
    return this.#version;
  }

  /** Asks the engine for its versions and picks the lower of its and ours; again after a reconnect. */
  async negotiate(): Promise<string> {
    const v = await this.#get<{ ApiVersion?: string; MinAPIVersion?: string }>('/version');
    if (typeof v.ApiVersion !== 'string') throw new SidecarError('SIDECAR_DOCKER_API', 'the engine gave no ApiVersion');
    if (v.MinAPIVersion && compareVersions(v.MinAPIVersion, this.#want) > 0) {
      throw new SidecarError(
        'SIDECAR_DOCKER_API',
        `the engine needs API ${v.MinAPIVersion} at least; cnmd speaks ${this.#want}`,
      );
    }
    this.#version = compareVersions(v.ApiVersion, this.#want) < 0 ? v.ApiVersion : this.#want;
    return this.#version;
  }

  /** Containers as `docker ps` lists them (running ones unless `all`), filtered by the engine. */
  async containers(
    filters: EventFilters = {},
    all = false,
  ): Promise<{ Id: string; Labels?: Record<string, string> }[]> {
    const q = new URLSearchParams({ all: String(all), filters: JSON.stringify(filters) });
    return this.#get(`${this.#prefix()}/containers/json?${q}`);
  }

  /** `docker inspect` of a container; undefined when there is none by that id. */
  async inspect(id: string): Promise<unknown | undefined> {
    return this.#get(`${this.#prefix()}/containers/${encodeURIComponent(id)}/json`, true);
  }

  /**
   * The engine's events from now on. The stream is open (the engine answered) when this
   * resolves, so nothing that happens afterwards is missed: list containers after it.
   */
  async events(filters: EventFilters): Promise<EventStream> {
    // A connection of its own: the stream holds it for as long as it lasts.
    const client = this.#newClient();
    const q = new URLSearchParams({ filters: JSON.stringify(filters) });
    try {
      const res = await client.request({
        method: 'GET',
        path: `${this.#prefix()}/events?${q}`,
        bodyTimeout: 0,
        headersTimeout: 10_000,
      });
      if (res.statusCode !== 200) {
        const text = await res.body.text().catch(() => '');
        throw new SidecarError('SIDECAR_DOCKER_API', `GET /events: ${res.statusCode} ${text.trim()}`);
      }
      return new EventStream(res.body, () => client.destroy().catch(() => {}));
    } catch (err) {
      await client.destroy().catch(() => {});
      throw wrap(err, 'GET /events');
    }
  }

  async close(): Promise<void> {
    await this.#client.close().catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #prefix(): string {
    return `/v${this.#version ?? this.#want}`;
  }

  async #get<T>(path: string, notFoundOk = false): Promise<T> {
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#client.request({ method: 'GET', path, headersTimeout: 10_000, bodyTimeout: 30_000 });
    } catch (err) {
      // A client whose socket broke may stay broken: the next call gets a fresh one.
      const old = this.#client;
      this.#client = this.#newClient();
      await old.destroy().catch(() => {});
      throw wrap(err, `GET ${path}`);
    }
    const text = await res.body.text();
    if (res.statusCode === 404 && notFoundOk) return undefined as T;
    if (res.statusCode !== 200) {
      throw new SidecarError('SIDECAR_DOCKER_API', `GET ${path}: ${res.statusCode} ${text.trim()}`);
    }
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new SidecarError('SIDECAR_DOCKER_API', `GET ${path}: unreadable answer`, { cause });
    }
  }
}

function wrap(err: unknown, what: string): SidecarError {
  if (err instanceof SidecarError) return err;
  return new SidecarError('SIDECAR_DOCKER_UNAVAILABLE', `${what}: ${(err as Error).message}`, { cause: err });
}
