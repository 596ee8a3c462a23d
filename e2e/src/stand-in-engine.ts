// A small HTTP server on a unix socket that answers what cnmd's Docker source asks of an engine
// (version, events, containers, inspect) for containers the test describes: their sandboxes are
// the test's own namespaces. For privileged tests of the source's decisions (which labels it
// takes, which networks it makes) without a Docker engine; the real engine is the docker project.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StandInContainer {
  name: string;
  labels: Record<string, string>;
  /** The container's network namespace (a path the daemon may open). */
  sandbox: string;
  /** docker run --dns, --dns-search, --dns-option. */
  dns?: { servers?: string[]; search?: string[]; options?: string[] };
}

interface Held extends StandInContainer {
  id: string;
  resolvConf: string;
}

export class StandInEngine {
  readonly dir: string;
  readonly socket: string;
  readonly #server: http.Server;
  readonly #containers = new Map<string, Held>();
  readonly #streams = new Set<http.ServerResponse>();

  private constructor(dir: string) {
    this.dir = dir;
    this.socket = join(dir, 'docker.sock');
    this.#server = http.createServer((req, res) => this.#handle(req, res));
  }

  static async start(): Promise<StandInEngine> {
    const e = new StandInEngine(await mkdtemp(join(tmpdir(), 'cnmd-engine-')));
    await new Promise<void>((resolve) => e.#server.listen(e.socket, resolve));
    return e;
  }

  /** A container starts: listed, inspectable, and a start event on every open stream. */
  async run(c: StandInContainer): Promise<string> {
    const id = randomBytes(32).toString('hex');
    const resolvConf = join(this.dir, `${id}.resolv.conf`);
    await writeFile(resolvConf, 'nameserver 192.0.2.1\n');
    this.#containers.set(id, { ...c, id, resolvConf });
    this.#event('start', id);
    return id;
  }

  /** The container's resolv.conf as cnmd left it. */
  resolvConf(id: string): string {
    return this.#containers.get(id)!.resolvConf;
  }

  async close(): Promise<void> {
    for (const s of this.#streams) s.end();
    await new Promise((r) => this.#server.close(r));
    this.#server.closeAllConnections();
    await rm(this.dir, { recursive: true, force: true });
  }

  #event(action: string, id: string): void {
    const line = `${JSON.stringify({ Type: 'container', Action: action, Actor: { ID: id, Attributes: {} } })}\n`;
    for (const s of this.#streams) s.write(line);
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://engine');
    const path = url.pathname.replace(/^\/v[0-9.]+/, '');
    const json = (v: unknown, status = 200) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(v));
    };
    if (path === '/version') {
      json({ ApiVersion: '1.41', MinAPIVersion: '1.12' });
      return;
    }
    if (path === '/events') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      this.#streams.add(res);
      res.on('close', () => this.#streams.delete(res));
      return;
    }
    if (path === '/containers/json') {
      json([...this.#containers.values()].map((c) => ({ Id: c.id, Labels: c.labels })));
      return;
    }
    const m = /^\/containers\/([0-9a-f]{64})\/json$/.exec(path);
    const c = m && this.#containers.get(m[1]!);
    if (!c) {
      json({ message: 'No such container' }, 404);
      return;
    }
    json({
      Id: c.id,
      Name: `/${c.name}`,
      Config: { Hostname: c.id.slice(0, 12), Labels: c.labels },
      State: { Running: true, Pid: process.pid },
      HostConfig: {
        NetworkMode: 'none',
        Dns: c.dns?.servers ?? [],
        DnsSearch: c.dns?.search ?? [],
        DnsOptions: c.dns?.options ?? [],
      },
      NetworkSettings: { SandboxKey: c.sandbox },
      ResolvConfPath: c.resolvConf,
    });
  }
}
