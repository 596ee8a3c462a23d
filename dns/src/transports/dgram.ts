import type dgram from 'node:dgram';
import type { PacketHandler, UdpTransport } from '../transport.js';

/** Where a node:dgram datagram came from. */
export interface DgramPeer {
  address: string;
  port: number;
}

/**
 * A UdpTransport over a node:dgram socket that the sidecar created and bound (inside the
 * sandbox's namespace, e.g. on 127.0.0.11:53). The transport owns the socket from then on.
 */
export class DgramTransport implements UdpTransport {
  readonly #socket: dgram.Socket;
  #closed = false;
  readonly batches = true;

  constructor(socket: dgram.Socket) {
    this.#socket = socket;
    // A send to a vanished client can fail (ICMP errors on some kernels); the socket stays usable.
    socket.on('error', () => {});
  }

  listen(handler: PacketHandler, batchEnd?: () => void): void {
    this.#socket.on('message', (msg, rinfo) => {
      // rinfo itself is the peer: it has address and port, and costs no extra object.
      const reply = handler(msg, rinfo);
      if (reply) this.send(reply, rinfo);
      batchEnd?.();
    });
  }

  send(packet: Buffer, peer: unknown): void {
    if (this.#closed) return;
    const p = peer as DgramPeer;
    this.#socket.send(packet, p.port, p.address);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => {
      try {
        this.#socket.close(() => resolve());
      } catch {
        resolve(); // already closed by its owner
      }
    });
  }
}
