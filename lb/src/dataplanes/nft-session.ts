// A long-lived `nft -i` in the LB sandbox, for the small transactions of everyday changes: on
// these machines starting a process (`ip netns exec ... nft -f -`) costs 20-40 ms, while a line
// given to a running nft is applied in under a millisecond. nft(8), INTERACTIVE MODE: each
// line is run as it is read, as one transaction (what it adds is all there or none of it).
//
// nft says nothing on success and writes errors to stderr, so each transaction is followed by a
// sentinel line that nft cannot parse: its error, which echoes the line, marks the end of the
// answer; anything before it is the transaction's own error. stdout is not read.
import { type ChildProcess, spawn } from 'node:child_process';

interface Pending {
  tag: string;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class NftSession {
  readonly #netns: string | undefined;
  #child: ChildProcess | undefined;
  #stderr = '';
  #pending: Pending[] = [];
  #next = 0;

  constructor(netns?: string) {
    this.#netns = netns;
  }

  /** Applies `line` (statements joined by ';', no newline) as one transaction. */
  run(line: string): Promise<void> {
    if (line.includes('\n')) return Promise.reject(new Error('one transaction is one line'));
    const child = this.#spawn();
    const tag = `cnmd_sync_${this.#next++}`;
    return new Promise((resolve, reject) => {
      this.#pending.push({ tag, resolve, reject });
      this.#hold(child, true);
      child.stdin?.write(`${line}\n${tag}\n`);
    });
  }

  close(): void {
    const c = this.#child;
    this.#child = undefined;
    if (c && c.exitCode === null) {
      c.stdin?.end();
      c.kill('SIGTERM');
    }
  }

  #spawn(): ChildProcess {
    if (this.#child) return this.#child;
    const named = this.#netns && /^(?:(?:\/var)?\/run\/netns\/)?([^/]+)$/.exec(this.#netns);
    const [cmd, args] = !this.#netns
      ? ['nft', ['-i']]
      : named
        ? ['ip', ['netns', 'exec', named[1]!, 'nft', '-i']]
        : ['nsenter', [`--net=${this.#netns}`, 'nft', '-i']];
    // HOME elsewhere: interactive nft keeps a history file in $HOME (libedit), and nothing of
    // ours may be left behind on the machine.
    const child = spawn(cmd as string, args as string[], {
      stdio: ['pipe', 'ignore', 'pipe'],
      env: { ...process.env, HOME: '/nonexistent' },
    });
    child.stdin?.on('error', () => {});
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      this.#stderr += d;
      this.#settle();
    });
    child.on('exit', (code, signal) => {
      if (this.#child === child) this.#child = undefined;
      const err = new Error(`nft -i exited (${signal ?? code}): ${this.#stderr.trim()}`);
      for (const p of this.#pending.splice(0)) p.reject(err);
      this.#stderr = '';
    });
    this.#hold(child, false);
    this.#child = child;
    return child;
  }

  /** An idle session must not keep the process alive; one with a transaction in flight must. */
  #hold(child: ChildProcess, busy: boolean): void {
    type Ref = { ref?: () => void; unref?: () => void };
    for (const h of [child, child.stdin, child.stderr] as unknown as Ref[]) {
      if (busy) h?.ref?.();
      else h?.unref?.();
    }
  }

  #settle(): void {
    for (;;) {
      const p = this.#pending[0];
      if (!p) return;
      // The sentinel's error: "Error: syntax error, ...\n<tag>\n^^^...\n".
      const at = this.#stderr.indexOf(`\n${p.tag}\n`);
      if (at < 0) return;
      const end = this.#stderr.indexOf('\n', at + p.tag.length + 2);
      if (end < 0) return;
      const before = this.#stderr.slice(0, at);
      this.#stderr = this.#stderr.slice(end + 1);
      this.#pending.shift();
      if (this.#pending.length === 0 && this.#child) this.#hold(this.#child, false);
      const own = before.slice(0, before.lastIndexOf('Error:')).trim();
      if (own) p.reject(new Error(own));
      else p.resolve();
    }
  }
}
