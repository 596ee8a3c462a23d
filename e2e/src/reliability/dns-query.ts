// Asking 127.0.0.11 from inside a sandbox, as a stub resolver there would: a UDP socket made in
// the sandbox's namespace (so the daemon's NAT rule for 127.0.0.11:53 applies), a query, its
// answer read back. Only what the reliability checks need: A queries, the rcode and addresses.
import type dgram from 'node:dgram';
import { bindUdpIn } from '@cnmd/sidecar';

export interface DnsAnswer {
  /** RFC 1035 4.1.1 RCODE: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED. */
  rcode: number;
  /** The A records' addresses, sorted. */
  addresses: string[];
}

/** An A query (RFC 1035 4.1), recursion desired. */
export function aQuery(id: number, name: string): Buffer {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  const head = Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([head, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/** Skips a name (RFC 1035 4.1.4: labels, or a pointer that ends it); the offset after it. */
function skipName(m: Buffer, at: number): number {
  for (;;) {
    const len = m[at];
    if (len === undefined) throw new Error('name past the end');
    if ((len & 0xc0) === 0xc0) return at + 2;
    if (len === 0) return at + 1;
    at += 1 + len;
  }
}

/** The rcode and A addresses of an answer; undefined when it is not one. */
export function parseAnswer(m: Buffer): (DnsAnswer & { id: number; question: string }) | undefined {
  if (m.length < 12 || (m[2]! & 0x80) === 0) return undefined;
  try {
    let at = 12;
    const qd = m.readUInt16BE(4);
    const an = m.readUInt16BE(6);
    let question = '';
    for (let i = 0; i < qd; i++) {
      const labels: string[] = [];
      for (let p = at; m[p] !== 0 && (m[p]! & 0xc0) === 0; p += 1 + m[p]!) {
        labels.push(m.subarray(p + 1, p + 1 + m[p]!).toString('latin1'));
      }
      if (i === 0) question = labels.join('.').toLowerCase();
      at = skipName(m, at) + 4;
    }
    const addresses: string[] = [];
    for (let i = 0; i < an; i++) {
      at = skipName(m, at);
      const type = m.readUInt16BE(at);
      const rdlen = m.readUInt16BE(at + 8);
      if (type === 1 && rdlen === 4) addresses.push([...m.subarray(at + 10, at + 14)].join('.'));
      at += 10 + rdlen;
    }
    return { id: m.readUInt16BE(0), rcode: m[3]! & 0x0f, addresses: addresses.sort(), question };
  } catch {
    return undefined;
  }
}

/** A resolver client inside one sandbox: asks 127.0.0.11:53 and waits for the matching answer. */
export class SandboxDns {
  readonly #socket: dgram.Socket;
  readonly #waiting = new Map<number, (a: DnsAnswer & { question: string }) => void>();
  #id = Math.floor(Math.random() * 0xffff);

  private constructor(socket: dgram.Socket) {
    this.#socket = socket;
    socket.on('error', () => {}); // a query that went nowhere times out
    socket.on('message', (m: Buffer) => {
      const a = parseAnswer(m);
      if (a) this.#waiting.get(a.id)?.(a);
    });
  }

  /** A client in the namespace at `netns` (a path). */
  static async open(netns: string): Promise<SandboxDns> {
    return new SandboxDns(await bindUdpIn(netns, '0.0.0.0', 0));
  }

  /**
   * The answer for `name` (A), trying `tries` times `timeoutMs` apart; undefined when none came
   * (no resolver listens, or it is stuck).
   */
  async ask(name: string, opts: { tries?: number; timeoutMs?: number } = {}): Promise<DnsAnswer | undefined> {
    const { tries = 5, timeoutMs = 1000 } = opts;
    for (let t = 0; t < tries; t++) {
      const id = (this.#id = (this.#id + 1) & 0xffff);
      const got = await new Promise<DnsAnswer | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), timeoutMs);
        this.#waiting.set(id, (a) => {
          if (a.question !== name.toLowerCase()) return; // a stray answer that carries this id
          clearTimeout(timer);
          resolve({ rcode: a.rcode, addresses: a.addresses });
        });
        this.#socket.send(aQuery(id, name), 53, '127.0.0.11', () => {});
      });
      this.#waiting.delete(id);
      if (got) return got;
    }
    return undefined;
  }

  close(): void {
    try {
      this.#socket.close();
    } catch {} // closed already
  }
}
