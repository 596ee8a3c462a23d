// Network namespaces for privileged tests: each test gets its own, named so that leftovers
// are recognisable, and removed when the test ends, pass or fail.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Runs a command; rejects with its stderr when it fails. */
export async function run(cmd: string, args: string[], opts: { input?: string } = {}): Promise<string> {
  const child = exec(cmd, args, { maxBuffer: 64 * 1024 * 1024 });
  if (opts.input !== undefined) {
    child.child.stdin?.end(opts.input);
  }
  const { stdout } = await child;
  return stdout;
}

export class Netns {
  readonly name: string;
  #removed = false;

  private constructor(name: string) {
    this.name = name;
  }

  static async create(prefix = 'cnmd-t'): Promise<Netns> {
    const name = `${prefix}-${randomBytes(4).toString('hex')}`;
    await run('ip', ['netns', 'add', name]);
    const ns = new Netns(name);
    await ns.exec('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  get path(): string {
    return `/run/netns/${this.name}`;
  }

  /** Runs a command inside the namespace. */
  exec(cmd: string, args: string[], opts: { input?: string } = {}): Promise<string> {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  async remove(): Promise<void> {
    if (this.#removed) return;
    this.#removed = true;
    // Deleting the namespace takes its links with it (a veth's peer goes too); its
    // /etc/netns entry (a resolv.conf the daemon wrote) is not the kernel's: remove it too.
    await run('ip', ['netns', 'delete', this.name]);
    await rm(`/etc/netns/${this.name}`, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}

const netnsMounted = async () =>
  (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some((l) => l.split(' ')[4] === '/run/netns');

/**
 * `ip netns add` bind-mounts /run/netns on its first use, and nothing takes it away. Call this
 * before a run makes namespaces; what it returns, after the run, unmounts /run/netns if the run
 * mounted it and left no namespace in it (waiting a moment for ones removed in the background,
 * a daemon's LB sandboxes), and resolves with the namespaces left.
 */
export async function netnsMountGuard(): Promise<() => Promise<string[]>> {
  const mountedBefore = await netnsMounted();
  return async () => {
    let left: string[] = [];
    for (let i = 0; i < 30; i++) {
      left = await readdir('/run/netns').catch(() => []);
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!mountedBefore && left.length === 0 && (await netnsMounted())) await run('umount', ['/run/netns']);
    return left;
  };
}
