// One generic netlink socket (NETLINK_GENERIC) over the `netlink` package's raw transport. It
// numbers requests and matches replies itself so that many requests go out in one sendmsg and
// are in flight together (one weight change costs one datagram, 10,000 services a few hundred).
// A netlink socket acts on the namespace it was created in: create it inside the LB sandbox.
import { constants } from 'node:os';
import { RawNetlinkSocket } from 'netlink';
import { LbError, LbNetlinkError } from '../errors.js';
import { frame, type GenlRequest } from './codec.js';
import { decodeNlMessages, NLM_F_ACK, NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR, nlError } from './netlink.js';

const NETLINK_GENERIC = 16; // include/uapi/linux/netlink.h

/**
 * Requests in flight at most, all sent in one datagram. Only the last of a datagram asks for an
 * ACK: the kernel handles a datagram's messages in order and reports every failure whether
 * asked or not (net/netlink/af_netlink.c, netlink_rcv_skb), so when the last is acknowledged
 * the others without an error have succeeded, at one reply per datagram instead of one per
 * request. A failure's reply echoes the request (about 1 KiB of truesize); a window that all
 * fails must still fit the receive buffer, or the kernel drops replies (ENOBUFS, then #fail).
 */
const WINDOW = 256;
const RCVBUF = 4 << 20; // capped by net.core.rmem_max (and doubled by the kernel)

const isDump = (msg: Buffer): boolean => (msg.readUInt16LE(6) & NLM_F_DUMP) === NLM_F_DUMP;
const seqOf = (msg: Buffer): number => msg.readUInt32LE(8); // struct nlmsghdr.nlmsg_seq

const errnoNames = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
export const errnoName = (n: number): string => errnoNames.get(n) ?? `errno ${n}`;

interface Pending {
  msg: Buffer;
  /** The requests sent in the same datagram, when this one is its last (the one ACKed). */
  batch?: Pending[];
  replies: Buffer[];
  resolve: (replies: Buffer[]) => void;
  reject: (err: Error) => void;
  /** Names the request in an error: a string, or made only when needed (requestAll). */
  what: string | (() => string);
}

const nameOf = (p: Pending): string => (typeof p.what === 'string' ? p.what : p.what());

export class GenlSocket {
  readonly #raw: RawNetlinkSocket;
  readonly #pid: number;
  readonly #pending = new Map<number, Pending>();
  readonly #queue: Pending[] = [];
  #inflight = 0;
  #seq = 1;
  #flushing = false;
  #dumps: Promise<unknown> = Promise.resolve();
  #closed = false;

  /** Opens a socket in the calling thread's network namespace (synchronous, for withNetns). */
  static open(): GenlSocket {
    try {
      return new GenlSocket(new RawNetlinkSocket(NETLINK_GENERIC, { recvBufferSize: RCVBUF, sendBufferSize: RCVBUF }));
    } catch (cause) {
      throw new LbNetlinkError('cannot open a generic netlink socket', 0, { cause });
    }
  }

  private constructor(raw: RawNetlinkSocket) {
    this.#raw = raw;
    this.#pid = raw.address().port;
    raw.on('message', (buf) => this.#receive(buf));
    raw.on('error', (err) =>
      this.#fail(new LbNetlinkError(`netlink socket: ${err.message}`, err.errno ?? 0, { cause: err })),
    );
    raw.unref(); // only pending requests keep the process alive
  }

  /**
   * Sends one request (REQUEST|ACK, and DUMP when asked) and resolves with the payloads of the
   * replies: none for an acknowledged change, one per object for a dump. Rejects with
   * LbNetlinkError carrying the kernel's errno. Dumps go one at a time (a socket runs one dump).
   */
  request(req: GenlRequest, what: string): Promise<Buffer[]> {
    if (this.#closed) return Promise.reject(new LbError('LB_CLOSED', 'the generic netlink socket is closed'));
    if (!req.dump) return this.#enqueue(req, what);
    const run = this.#dumps.then(() => this.#enqueue(req, what));
    this.#dumps = run.catch(() => {});
    return run;
  }

  /**
   * Sends many requests (none a dump) in order, as request() would, and resolves once every one
   * is answered with the error of each (undefined where it succeeded): no promise per request,
   * which a full sync of 40,000 requests would otherwise make and keep. `what` names a request
   * in its error, and is called only for one that failed.
   */
  requestAll(reqs: readonly GenlRequest[], what: (req: GenlRequest) => string): Promise<(Error | undefined)[]> {
    if (this.#closed) return Promise.reject(new LbError('LB_CLOSED', 'the generic netlink socket is closed'));
    const errors: (Error | undefined)[] = new Array(reqs.length).fill(undefined);
    if (reqs.length === 0) return Promise.resolve(errors);
    return new Promise((resolve) => {
      let left = reqs.length;
      const settle = () => {
        if (--left === 0) resolve(errors);
      };
      reqs.forEach((req, i) => {
        if (req.dump) throw new TypeError('requestAll: a dump goes through request()');
        this.#push(
          req,
          () => what(req),
          settle,
          (err) => {
            errors[i] = err;
            settle();
          },
        );
      });
    });
  }

  #enqueue(req: GenlRequest, what: string): Promise<Buffer[]> {
    return new Promise((resolve, reject) => this.#push(req, what, resolve, reject));
  }

  #push(req: GenlRequest, what: Pending['what'], resolve: Pending['resolve'], reject: Pending['reject']): void {
    const seq = this.#seq;
    this.#seq = (this.#seq % 0xffffffff) + 1;
    const msg = frame(req, seq, this.#pid);
    const p: Pending = { msg, replies: [], resolve, reject, what };
    this.#pending.set(seq, p);
    this.#queue.push(p);
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** Sends what the window allows, all in one datagram (the kernel handles each message in turn). */
  #flush(): void {
    this.#flushing = false;
    const n = Math.min(this.#queue.length, WINDOW - this.#inflight);
    if (n <= 0 || this.#closed) return;
    const batch = this.#queue.splice(0, n);
    this.#inflight += n;
    for (const p of batch.slice(0, -1)) if (!isDump(p.msg)) p.msg.writeUInt16LE(p.msg.readUInt16LE(6) & ~NLM_F_ACK, 6);
    batch[batch.length - 1]!.batch = batch;
    this.#raw.ref();
    this.#raw.send(
      batch.map((p) => p.msg),
      {},
      (err) => {
        if (err) this.#fail(new LbNetlinkError(`sendmsg: ${err.message}`, err.errno ?? 0, { cause: err }));
      },
    );
  }

  #receive(buf: Buffer): void {
    for (const m of decodeNlMessages(buf)) {
      const p = this.#pending.get(m.seq);
      if (!p) continue; // a late reply to a request already failed
      if (m.type === NLMSG_ERROR) {
        const errno = nlError(m.payload);
        if (errno === 0) this.#settle(m.seq, p, undefined);
        else this.#settle(m.seq, p, new LbNetlinkError(`${nameOf(p)}: ${errnoName(errno)}`, errno));
      } else if (m.type === NLMSG_DONE) {
        // a dump's end carries its status (net/netlink/af_netlink.c, netlink_dump_done)
        const errno = m.payload.length >= 4 ? nlError(m.payload) : 0;
        this.#settle(m.seq, p, errno ? new LbNetlinkError(`${nameOf(p)}: ${errnoName(errno)}`, errno) : undefined);
      } else {
        p.replies.push(m.payload); // a dump's parts (NLM_F_MULTI), or a reply that an ACK follows
      }
    }
  }

  #settle(seq: number, p: Pending, err: Error | undefined): void {
    this.#pending.delete(seq);
    this.#inflight--;
    if (err) p.reject(err);
    else p.resolve(p.replies);
    // the last of a datagram settled: the others that neither failed nor dump have succeeded
    for (const q of p.batch ?? []) {
      const s = seqOf(q.msg);
      if (q !== p && !isDump(q.msg) && this.#pending.get(s) === q) {
        this.#pending.delete(s);
        this.#inflight--;
        q.resolve(q.replies);
      }
    }
    if (this.#pending.size === 0) this.#raw.unref();
    if (this.#queue.length > 0 && !this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #fail(err: Error): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    this.#queue.length = 0;
    this.#inflight = 0;
    for (const p of all) p.reject(err);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#fail(new LbError('LB_CLOSED', 'the generic netlink socket was closed'));
    this.#raw.close();
  }
}
