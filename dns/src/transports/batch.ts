// A UdpTransport over the native batch addon (dns/native/batch.c): the socket is drained with
// recvmmsg(2) and answered with sendmmsg(2), one JS call per batch of up to 64 datagrams
// instead of one 'message' event and one send per datagram. Datagrams, peers and replies
// travel through ArrayBuffers shared with C, so nothing is copied at the boundary.
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { getSystemErrorName } from 'node:util';
import type { PacketHandler, Peer, UdpTransport } from '../transport.js';

export type BatchTransportErrorCode =
  /** The addon is not built (npm install builds it with node-gyp) or cannot load here. */
  | 'DNS_BATCH_UNAVAILABLE'
  /** A socket call failed; `cause` is the system error (`code`, `syscall`). */
  | 'DNS_BATCH_SOCKET';

export class BatchTransportError extends Error {
  readonly code: BatchTransportErrorCode;

  constructor(code: BatchTransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BatchTransportError';
    this.code = code;
  }
}

type Handle = object;

/** What dns/native/batch.c exports. */
interface Addon {
  readonly BATCH: number;
  readonly SLOT: number;
  readonly PEER: number;
  readonly recv: ArrayBuffer;
  readonly send: ArrayBuffer;
  readonly peers: ArrayBuffer;
  readonly meta: ArrayBuffer;
  bind(host: string, port: number): number;
  localPort(fd: number): number;
  open(fd: number, onBatch: (n: number) => void, onError: (code: string, syscall: string) => void): Handle;
  sendTo(handle: Handle, data: Uint8Array, peer: Uint8Array): number;
  stats(handle: Handle): [number, number, number, number];
  close(handle: Handle): void;
}

/** The views every transport of this thread shares (batches run one at a time). */
interface Shared {
  addon: Addon;
  recv: Uint8Array;
  send: Uint8Array;
  peers: Uint8Array;
  /** [i]: length of datagram i (0: skip it); [BATCH + i]: length of the reply to it (0: none). */
  meta: Int32Array;
}

/** A struct sockaddr_in6 is 28 bytes; a sockaddr_in (16) fits too. */
const SOCKADDR_LEN = 28;
// From src/transports (tests) or dist/src/transports (built code) up to the package root.
const ADDON_PATHS = ['../../native/build/Release/cnmd_batch.node', '../../../native/build/Release/cnmd_batch.node'];

let shared: Shared | undefined;
let loadError: unknown;

function load(): Shared {
  if (shared) return shared;
  if (loadError === undefined) {
    const require = createRequire(import.meta.url);
    for (const path of ADDON_PATHS) {
      try {
        const addon = require(path) as Addon;
        shared = {
          addon,
          recv: new Uint8Array(addon.recv),
          send: new Uint8Array(addon.send),
          peers: new Uint8Array(addon.peers),
          meta: new Int32Array(addon.meta),
        };
        return shared;
      } catch (err) {
        loadError = err;
        if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') break;
      }
    }
  }
  throw new BatchTransportError(
    'DNS_BATCH_UNAVAILABLE',
    'the native batch transport is not built (npm install in dns/ builds it with node-gyp); use DgramTransport',
    { cause: loadError },
  );
}

function systemError(code: string, syscall: string): BatchTransportError {
  const cause = Object.assign(new Error(`${syscall} ${code}`), { code, syscall });
  return new BatchTransportError('DNS_BATCH_SOCKET', `${syscall} failed: ${code}`, { cause });
}

export interface BatchUdpOptions {
  /** Socket errors after listen (a failed recvmmsg, sendmmsg or send); default: ignored, as DgramTransport does. */
  onError?: (err: BatchTransportError) => void;
}

/**
 * A UdpTransport on a UDP socket fd that it owns from construction on. Peers are copies of the
 * sender's sockaddr (a Uint8Array), valid as long as the caller keeps them.
 */
export class BatchUdpTransport implements UdpTransport {
  readonly #s: Shared;
  readonly #fd: number;
  readonly #onError: (err: BatchTransportError) => void;
  #handle: Handle | undefined;
  #handler: PacketHandler | undefined;
  #batchEnd: (() => void) | undefined;
  #closed = false;
  readonly batches = true;

  /** Whether the addon is built and loads here. */
  static available(): boolean {
    try {
      load();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Creates a UDP socket and binds it synchronously, in the network namespace of the calling
   * thread (the sidecar enters the sandbox, calls this, and leaves). `address` is an IP literal.
   */
  static bind(address: string, port: number, options: BatchUdpOptions = {}): BatchUdpTransport {
    const { addon } = load();
    let fd: number;
    try {
      fd = addon.bind(address, port);
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'EINVAL';
      throw new BatchTransportError('DNS_BATCH_SOCKET', `bind ${address}:${port} failed: ${code}`, { cause: err });
    }
    return new BatchUdpTransport(fd, options);
  }

  /** Takes an already-bound UDP socket fd; closing the transport closes it. */
  constructor(fd: number, options: BatchUdpOptions = {}) {
    this.#s = load();
    this.#fd = fd;
    this.#onError = options.onError ?? (() => {});
  }

  /** The local port (useful after binding port 0). */
  get port(): number {
    return this.#s.addon.localPort(this.#fd);
  }

  listen(handler: PacketHandler, batchEnd?: () => void): void {
    if (this.#closed || this.#handle) throw new Error('BatchUdpTransport.listen: called twice or after close');
    this.#handler = handler;
    this.#batchEnd = batchEnd;
    this.#handle = this.#s.addon.open(
      this.#fd,
      (n) => this.#onBatch(n),
      (code, syscall) => this.#onError(systemError(code, syscall)),
    );
  }

  /** Called by C once per recvmmsg batch; writes the replies where C's sendmmsg reads them. */
  #onBatch(n: number): void {
    const { recv, send, peers, meta, addon } = this.#s;
    const { BATCH, SLOT, PEER } = addon;
    const handler = this.#handler!;
    for (let i = 0; i < n && !this.#closed; i++) {
      const len = meta[i]!;
      if (len === 0) continue;
      const packet = Buffer.from(recv.buffer, i * SLOT, len);
      const peer = peers.slice(i * PEER, i * PEER + SOCKADDR_LEN);
      let reply: Buffer | undefined;
      try {
        reply = handler(packet, peer);
      } catch (err) {
        // One bad packet must not cost the rest of the batch their answers.
        this.#onError(new BatchTransportError('DNS_BATCH_SOCKET', 'the packet handler threw', { cause: err }));
        continue;
      }
      if (reply === undefined || reply.length === 0) continue;
      if (reply.length > SLOT) {
        this.send(reply, peer);
        continue;
      }
      send.set(reply, i * SLOT);
      meta[BATCH + i] = reply.length;
    }
    this.#batchEnd?.();
  }

  /** Sends at once with sendto(2); a full send buffer drops it, as the kernel drops UDP. */
  send(packet: Buffer, peer: Peer): void {
    if (this.#closed || !this.#handle) return;
    if (!(peer instanceof Uint8Array)) throw new TypeError('BatchUdpTransport.send: not a peer of this transport');
    const r = this.#s.addon.sendTo(this.#handle, packet, peer);
    if (r < 0 && getSystemErrorName(r) !== 'EAGAIN') this.#onError(systemError(getSystemErrorName(r), 'sendto'));
  }

  /** Datagrams received, replies sent and dropped, recvmmsg batches, since listen. */
  stats(): { received: number; sent: number; dropped: number; batches: number } {
    const [received, sent, dropped, batches] = this.#handle ? this.#s.addon.stats(this.#handle) : [0, 0, 0, 0];
    return { received, sent, dropped, batches };
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#handle) this.#s.addon.close(this.#handle);
    else closeSync(this.#fd);
    this.#handler = undefined;
    return Promise.resolve();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
