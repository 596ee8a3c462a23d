import type { PacketHandler, UdpTransport } from '../src/index.js';

/** A UdpTransport without a socket: tests hand it packets and read the replies. */
export class FakeTransport implements UdpTransport {
  handler: PacketHandler | undefined;
  readonly sent: Buffer[] = [];
  closed = false;

  listen(handler: PacketHandler): void {
    this.handler = handler;
  }

  send(packet: Buffer): void {
    this.sent.push(packet);
    this.#waiting.shift()?.(packet);
  }

  readonly #waiting: ((b: Buffer) => void)[] = [];

  /** The reply to a packet, now or when the server sends it. */
  query(packet: Buffer): Promise<Buffer> {
    const now = this.ask(packet);
    return now ? Promise.resolve(now) : new Promise((resolve) => this.#waiting.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** The synchronous reply to a packet, if any. */
  ask(packet: Buffer): Buffer | undefined {
    return this.handler!(packet, { address: '127.0.0.1', port: 1 });
  }
}
