import type net from 'node:net';

// DNS over TCP (RFC 7766): two-byte length before each message (RFC 1035 4.2.2), any number of
// queries per connection, answered as they are ready, in any order (section 6.2.1.1); idle
// connections closed (6.2.3); connections and queries in flight bounded per listener.

/** The reply to a query: at once, later, or none (a dropped packet). */
export type TcpHandler = (packet: Buffer) => Buffer | Promise<Buffer | undefined> | undefined;

/** Queries of one connection awaiting an answer before the server stops reading it. */
const MAX_PENDING = 64;

export class TcpListener {
  readonly #server: net.Server;
  readonly #conns = new Set<net.Socket>();
  #closed = false;

  /** batchEnd: called after the queries of each read were handed to handler. */
  constructor(
    server: net.Server,
    handler: TcpHandler,
    opts: { idleTimeout: number; maxConnections: number; batchEnd?: (() => void) | undefined },
  ) {
    this.#server = server;
    server.on('error', () => {});
    server.on('connection', (sock) => {
      if (this.#closed || this.#conns.size >= opts.maxConnections) {
        sock.destroy();
        return;
      }
      this.#conns.add(sock);
      sock.on('close', () => this.#conns.delete(sock));
      serve(sock, handler, opts.idleTimeout, opts.batchEnd);
    });
  }

  get connections(): number {
    return this.#conns.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#conns) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function serve(sock: net.Socket, handler: TcpHandler, idleTimeout: number, batchEnd?: () => void): void {
  let buf = Buffer.alloc(0);
  let pending = 0;
  sock.setNoDelay(true);
  sock.setTimeout(idleTimeout, () => sock.destroy());
  sock.on('error', () => {});
  const write = (reply: Buffer) => {
    if (sock.destroyed || !sock.writable) return;
    const frame = Buffer.allocUnsafe(2 + reply.length);
    frame.writeUInt16BE(reply.length, 0);
    reply.copy(frame, 2);
    sock.write(frame);
  };
  sock.on('data', (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const len = buf.readUInt16BE(0);
      const packet = buf.subarray(2, 2 + len);
      buf = buf.subarray(2 + len);
      const reply = handler(packet);
      if (!(reply instanceof Promise)) {
        if (reply) write(reply);
        continue;
      }
      if (++pending >= MAX_PENDING) sock.pause();
      void reply.then((r) => {
        if (--pending < MAX_PENDING && sock.isPaused()) sock.resume();
        if (r) write(r);
      });
    }
    batchEnd?.();
  });
}
