// How datagrams reach the server and leave it. The server never opens a socket: the sidecar
// hands it transports already bound inside a sandbox. Two implementations: node:dgram
// (transports/dgram.ts) and a native batch path over recvmmsg/sendmmsg (transports/batch.ts).

/** Where a datagram came from: opaque to the server, meaningful only to its transport. */
export type Peer = unknown;

/**
 * Returns the reply to send at once, or undefined when there is none yet (the server may
 * reply later with `send`, e.g. after forwarding, or never, for a packet it drops).
 * `packet` may be a view of a receive buffer that the transport reuses: valid only during the
 * call; copy it to keep it.
 */
export type PacketHandler = (packet: Buffer, peer: Peer) => Buffer | undefined;

export interface UdpTransport {
  /**
   * Starts delivering datagrams to `handler`; called once. A transport whose `batches` is true
   * calls `batchEnd` (when given) after each delivery: the datagrams of one recvmmsg, or one.
   */
  listen(handler: PacketHandler, batchEnd?: () => void): void;
  /**
   * Whether it calls listen's batchEnd. The server times queries per delivery (metrics); without
   * it, it ends a delivery with a microtask, which costs as much as a clock read.
   */
  readonly batches?: boolean;
  /** Sends a datagram to a peer that `listen` reported. */
  send(packet: Buffer, peer: Peer): void;
  /** Stops receiving and closes the socket; idempotent. */
  close(): Promise<void>;
}
