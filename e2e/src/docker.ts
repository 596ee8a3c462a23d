// The real Docker engine for tests and benches: the docker CLI, a lab of uniquely named
// containers removed at close (pass or fail), and a unix-socket proxy between the daemon and
// the engine that a test can cut and restore (a broken event stream without restarting the
// engine, which other tests share).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import net from 'node:net';

export const DOCKER_SOCKET = process.env.CNMD_DOCKER_SOCKET ?? '/var/run/docker.sock';
export const TEST_IMAGE = process.env.CNMD_TEST_IMAGE ?? 'local/busybox';
const env = { ...process.env, DOCKER_CONFIG: process.env.DOCKER_CONFIG ?? '/tmp/cnmd-docker/dockercfg' };

export interface DockerResult {
  code: number;
  out: string;
  err: string;
}

export function docker(...args: string[]): Promise<DockerResult> {
  return new Promise((resolve) => {
    execFile('docker', args, { env, maxBuffer: 16 * 1024 * 1024 }, (err, out, errOut) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out, err: errOut });
    });
  });
}

export async function dockerOk(...args: string[]): Promise<string> {
  const r = await docker(...args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.err}`);
  return r.out;
}

export interface RunOptions {
  /** The cnmd.networks label; none: no cnmd labels at all. */
  networks?: string;
  labels?: Record<string, string>;
  /** More `docker run` arguments (before the image). */
  args?: string[];
  /** `--network none` unless false. */
  none?: boolean;
  cmd?: string[];
}

/** The containers of one test: unique names, one scope label, all removed by close(). */
export class DockerLab {
  readonly prefix = `cnmdt-${randomBytes(3).toString('hex')}`;
  /**
   * The lab's cnmd.scope: a test daemon started with --docker-scope handles only these
   * containers, and any other cnmd on the engine leaves them alone.
   */
  readonly scope = this.prefix;

  name(short: string): string {
    return `${this.prefix}-${short}`;
  }

  /** `docker run -d` of the test image; returns the container's name. */
  async run(short: string, o: RunOptions = {}): Promise<string> {
    const name = this.name(short);
    const args = ['run', '-d', '--name', name, '--label', `cnmd.scope=${this.scope}`];
    if (o.none !== false) args.push('--network', 'none');
    if (o.networks !== undefined) args.push('--label', `cnmd.networks=${o.networks}`);
    for (const [k, v] of Object.entries(o.labels ?? {})) args.push('--label', `${k}=${v}`);
    args.push(...(o.args ?? []), TEST_IMAGE, ...(o.cmd ?? ['sleep', '3600']));
    await dockerOk(...args);
    return name;
  }

  exec(name: string, ...cmd: string[]): Promise<DockerResult> {
    return docker('exec', name, ...cmd);
  }

  /** Waits until cnmd has attached the container: its resolv.conf names 127.0.0.11 (the last step). */
  async ready(name: string, timeoutMs = 20_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if ((await this.exec(name, 'grep', '-q', '127.0.0.11', '/etc/resolv.conf')).code === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${name} was not attached in ${timeoutMs} ms`);
  }

  async close(): Promise<void> {
    const ids = (await docker('ps', '-aq', '--filter', `label=cnmd.scope=${this.scope}`)).out
      .split('\n')
      .filter(Boolean);
    if (ids.length > 0) await docker('rm', '-f', '-v', ...ids);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A unix-socket proxy to the engine: cut() breaks every connection and refuses new ones until restore(). */
export class DockerProxy {
  readonly path: string;
  readonly #server: net.Server;
  readonly #conns = new Set<net.Socket>();
  #cut = false;

  private constructor(path: string) {
    this.path = path;
    this.#server = net.createServer((c) => this.#accept(c));
  }

  static async start(path: string): Promise<DockerProxy> {
    await rm(path, { force: true });
    const p = new DockerProxy(path);
    await new Promise<void>((resolve, reject) => {
      p.#server.once('error', reject);
      p.#server.listen(path, resolve);
    });
    return p;
  }

  #accept(c: net.Socket): void {
    if (this.#cut) {
      c.destroy();
      return;
    }
    const up = net.connect(DOCKER_SOCKET);
    for (const s of [c, up]) {
      this.#conns.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        this.#conns.delete(s);
        c.destroy();
        up.destroy();
      });
    }
    c.pipe(up);
    up.pipe(c);
  }

  cut(): void {
    this.#cut = true;
    for (const s of this.#conns) s.destroy();
  }

  restore(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
    await rm(this.path, { force: true });
  }
}
