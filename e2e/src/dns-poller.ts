// Polls a sandbox's DNS (127.0.0.11:53) for names until each answers, from a long-lived node
// process inside the sandbox: one UDP socket, one query in flight, the next sent as soon as the
// last is answered but no sooner than `gapUs` after it (a blocking Atomics.wait fills the rest,
// so the poller spins no CPU and delays no reply: nothing is in flight while it waits). Each
// name's first answer with an A record is reported with the time it arrived on
// process.hrtime.bigint(), which is CLOCK_MONOTONIC (libuv's uv_hrtime) and so the same clock in
// every process on the machine: a caller compares it with its own process.hrtime.bigint().
// close() (or `await using`) ends the process.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface DnsAnswer {
  name: string;
  /** When the first answer with an address arrived: process.hrtime.bigint() in ns. */
  at: bigint;
  /** Its first A record. */
  ip: string;
  /** Queries sent for the name until then. */
  queries: number;
}

// stdin: `w NAME` polls NAME (answered `a NAME` once polling), `c NAME` stops polling it, `t`
// asks the time (answered `t NS`).
// stdout: one JSON object per answered name.
const POLLER = `const dgram = require('node:dgram');
const gapMs = Number(process.argv[1]) / 1000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const pending = []; const queries = new Map(); const byId = new Map();
let next = 0, id = 0, inFlight = false, lastSend = 0n, timer;
const sock = dgram.createSocket('udp4');
const query = (qid, name) => {
  // RFC 1035 4.1: header (id, RD set, one question), QNAME as labels, QTYPE A, QCLASS IN
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  return Buffer.concat([Buffer.from([qid >> 8, qid & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
};
const skipName = (m, o) => { for (;;) { const l = m[o]; if (l === 0) return o + 1; if ((l & 0xc0) === 0xc0) return o + 2; o += l + 1; } };
// RFC 1035 4.1.3: the first answer RR of type A (1) and class IN, its RDATA
const firstA = (m) => {
  let o = skipName(m, 12) + 4;
  for (let i = 0, n = m.readUInt16BE(6); i < n && o < m.length; i++) {
    o = skipName(m, o); const type = m.readUInt16BE(o), len = m.readUInt16BE(o + 8);
    if (type === 1 && len === 4) return [...m.subarray(o + 10, o + 14)].join('.');
    o += 10 + len;
  }
};
const send = () => {
  clearTimeout(timer); inFlight = false;
  if (pending.length === 0) return;
  const wait = gapMs - Number(process.hrtime.bigint() - lastSend) / 1e6;
  if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
  const name = pending[next++ % pending.length];
  const qid = id = (id + 1) & 0xffff; byId.set(qid, name);
  queries.set(name, (queries.get(name) ?? 0) + 1);
  inFlight = true; lastSend = process.hrtime.bigint();
  sock.send(query(qid, name), 53, '127.0.0.11');
  timer = setTimeout(send, 5); // lost (or the server is busy): ask again
};
sock.on('message', (m) => {
  const at = process.hrtime.bigint();
  const name = byId.get(m.readUInt16BE(0));
  const ip = (m[3] & 0x0f) === 0 && m.readUInt16BE(6) > 0 ? firstA(m) : undefined;
  const i = pending.indexOf(name);
  if (ip && i >= 0) {
    pending.splice(i, 1);
    process.stdout.write(JSON.stringify({ name, at: String(at), ip, queries: queries.get(name) }) + '\\n');
    queries.delete(name);
  }
  if (inFlight && (m.readUInt16BE(0) === id)) send();
});
sock.bind(0, () => {
  require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 't') return void process.stdout.write('t ' + process.hrtime.bigint() + '\\n');
    const name = line.slice(2);
    if (line.startsWith('c ')) return void (pending.includes(name) && pending.splice(pending.indexOf(name), 1));
    if (!pending.includes(name)) pending.push(name);
    process.stdout.write('a ' + name + '\\n');
    if (!inFlight) send();
  });
  process.stdout.write('ready\\n');
});
process.stdin.on('end', () => process.exit(0));`;

export class DnsPoller {
  readonly #proc: ChildProcess;
  readonly #waiting = new Map<
    string,
    { acked: () => void; answered: (a: DnsAnswer) => void; failed: (err: Error) => void }
  >();
  #times: ((ns: bigint) => void)[] = [];
  #err = '';
  #closed = false;

  private constructor(proc: ChildProcess) {
    this.#proc = proc;
  }

  /**
   * Starts the poller inside `netns` (a path such as /run/netns/NAME): `gapUs` is the least time
   * between two queries (default 300 µs). Checks that its clock is this process's.
   */
  static async start(netns: string, opts: { gapUs?: number } = {}): Promise<DnsPoller> {
    // nsenter execs node in place: the child's pid is the poller's.
    const proc = spawn('nsenter', [`--net=${netns}`, process.execPath, '-e', POLLER, String(opts.gapUs ?? 300)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    proc.stdin!.on('error', () => {}); // written to after it died: told by 'exit'
    const p = new DnsPoller(proc);
    try {
      await p.#follow();
      const before = process.hrtime.bigint();
      const theirs = await p.now();
      const after = process.hrtime.bigint();
      if (theirs < before || theirs > after) throw new Error(`the poller's clock is not this process's: ${theirs}`);
      return p;
    } catch (err) {
      p.close();
      throw err;
    }
  }

  #follow(): Promise<void> {
    const proc = this.#proc;
    proc.stderr?.on('data', (d: Buffer) => {
      this.#err += d.toString();
    });
    return new Promise((resolve, reject) => {
      proc.once('exit', (code, signal) => {
        const err = new Error(`the DNS poller exited (${code ?? signal}): ${this.#err}`);
        reject(err);
        for (const w of this.#waiting.values()) w.failed(err);
        this.#waiting.clear();
      });
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        if (line === 'ready') return resolve();
        if (line.startsWith('t ')) return this.#times.shift()?.(BigInt(line.slice(2)));
        if (line.startsWith('a ')) return this.#waiting.get(line.slice(2))?.acked();
        const a = JSON.parse(line) as { name: string; at: string; ip: string; queries: number };
        const w = this.#waiting.get(a.name);
        this.#waiting.delete(a.name);
        w?.answered({ ...a, at: BigInt(a.at) });
      });
    });
  }

  /** The poller's process.hrtime.bigint() now. */
  now(): Promise<bigint> {
    return new Promise((resolve) => {
      this.#times.push(resolve);
      this.#proc.stdin!.write('t\n');
    });
  }

  /**
   * Starts polling `name`; resolves once the poller is polling it, with `answered`: its first
   * answer with an address (rejected after `timeoutMs`).
   */
  watch(name: string, timeoutMs = 30_000): Promise<{ answered: Promise<DnsAnswer> }> {
    if (this.#closed) return Promise.reject(new Error('the DNS poller is closed'));
    return new Promise((acked, notAcked) => {
      const answered = new Promise<DnsAnswer>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.#waiting.delete(name);
          if (!this.#closed) this.#proc.stdin!.write(`c ${name}\n`);
          reject(new Error(`${name} did not answer in ${timeoutMs} ms`));
        }, timeoutMs);
        this.#waiting.set(name, {
          acked: () => acked({ answered }),
          answered: (a) => {
            clearTimeout(timer);
            resolve(a);
          },
          failed: (err) => {
            clearTimeout(timer);
            reject(err);
            notAcked(err);
          },
        });
      });
      answered.catch(() => {});
      this.#proc.stdin!.write(`w ${name}\n`);
    });
  }

  /** Ends the poller; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#proc.stdin?.end();
    this.#proc.kill('SIGKILL');
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
