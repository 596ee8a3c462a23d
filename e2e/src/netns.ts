// Network namespaces for privileged tests: each test gets its own, named so that leftovers
// are recognisable, and removed when the test ends, pass or fail.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
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
