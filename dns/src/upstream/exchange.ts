import dgram from 'node:dgram';
import net from 'node:net';
import { DnsError } from '../errors.js';
import type { Upstream } from './upstream-address.js';

// One query to one upstream and its answer. Each UDP query gets its own socket, connected to the
// upstream: a random source port per query (RFC 5452 section 9.2), replies from anyone else
// filtered by the kernel, and a refused port reported at once (ICMP) rather than after a timeout.

/**
 * Openers of sockets made inside a sandbox's network namespace, so that its forwarded queries
 * leave from there, as Docker sends a container's own upstream queries, and upstream ACLs see
 * the container. The server enters no namespace: the sidecar does, makes the socket, and leaves.
 * Each query takes a fresh socket and owns it: the exchange connects it to the upstream at once,
 * in the same tick, sends one query on it and closes it. An opener that throws fails that attempt
 * (DNS_UPSTREAM_ERROR), and the next upstream is tried.
 */
export interface UpstreamSockets {
  /**
   * A UDP socket of this family, bound inside the namespace (port 0; e.g. `dgram.createSocket`
   * then `bind({ fd })` over an fd made there) and not connected. An unbound one is refused: it
   * would be bound by the connect, in the server's own namespace.
   */
  udp(family: 4 | 6): dgram.Socket;
  /**
   * A TCP socket of this family made inside the namespace (`new net.Socket({ fd })` over an
   * unconnected socket(2) made there), not connected.
   */
  tcp(family: 4 | 6): net.Socket;
}

/**
 * Sends `query` and resolves with the matching reply; rejects DNS_UPSTREAM_TIMEOUT/_ERROR. The
 * sockets are the server's own, opened in its namespace, unless `sockets` gives a sandbox's.
 */
export type Exchange = (
  upstream: Upstream,
  query: Buffer,
  tcp: boolean,
  timeoutMs: number,
  sockets?: UpstreamSockets,
) => Promise<Buffer>;

/** The reply answers the query: same ID, QR set, same question (case-insensitively; RFC 5452 9.1). */
export function matches(reply: Buffer, query: Buffer, qEnd: number): boolean {
  if (reply.length < qEnd || reply[0] !== query[0] || reply[1] !== query[1] || !(reply[2]! & 0x80)) return false;
  if (reply.readUInt16BE(4) !== 1) return false;
  for (let i = 12; i < qEnd; i++) {
    let a = reply[i]!;
    let b = query[i]!;
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  return true;
}

export function questionEnd(query: Buffer): number {
  let o = 12;
  while (query[o]) o += query[o]! + 1;
  return o + 5;
}

function failure(u: Upstream, cause: unknown, what = ''): DnsError {
  return new DnsError('DNS_UPSTREAM_ERROR', `${u.key}: ${what}${(cause as Error)?.message ?? String(cause)}`, {
    cause,
  });
}

/** A sandbox's UDP socket, checked to be bound already (getsockname fails on an unbound one). */
function sandboxUdp(sockets: UpstreamSockets, family: 4 | 6): dgram.Socket {
  const sock = sockets.udp(family);
  try {
    sock.address();
  } catch (cause) {
    try {
      sock.close();
    } catch {}
    throw new DnsError('DNS_UPSTREAM_ERROR', 'the sandbox UDP socket is not bound', { cause });
  }
  return sock;
}

function udp(u: Upstream, query: Buffer, timeoutMs: number, sockets: UpstreamSockets | undefined): Promise<Buffer> {
  const qEnd = questionEnd(query);
  return new Promise((resolve, reject) => {
    const family = net.isIPv6(u.host) ? 6 : 4;
    let sock: dgram.Socket;
    try {
      sock = sockets ? sandboxUdp(sockets, family) : dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    } catch (cause) {
      reject(failure(u, cause, 'no socket from the sandbox: '));
      return;
    }
    const done = (err: Error | undefined, reply?: Buffer) => {
      clearTimeout(timer);
      sock.removeAllListeners('message');
      sock.on('error', () => {});
      try {
        sock.close();
      } catch {} // closed by its opener already
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => done(new DnsError('DNS_UPSTREAM_TIMEOUT', `no answer from ${u.key} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on('error', (cause) => done(failure(u, cause)));
    // Anything that is not the answer (a late reply to an earlier query, a forgery) is ignored.
    sock.on('message', (msg) => {
      if (matches(msg, query, qEnd)) done(undefined, msg);
    });
    // connect(2) can fail at once (EACCES for a broadcast address, ENETUNREACH with no route):
    // Node then calls back with the error, and a send on the unconnected socket would throw. A
    // sandbox's socket connected already throws here.
    try {
      sock.connect(u.port, u.host, ((cause?: Error) => {
        if (cause) done(failure(u, cause));
        else sock.send(query);
      }) as () => void);
    } catch (cause) {
      done(failure(u, cause));
    }
  });
}

function tcp(u: Upstream, query: Buffer, timeoutMs: number, sockets: UpstreamSockets | undefined): Promise<Buffer> {
  const qEnd = questionEnd(query);
  return new Promise((resolve, reject) => {
    let sock: net.Socket;
    try {
      if (sockets) {
        sock = sockets.tcp(net.isIPv6(u.host) ? 6 : 4);
        // At once: a socket over an unconnected fd that is left waiting fails its first read.
        sock.connect({ host: u.host, port: u.port });
      } else {
        sock = net.connect({ host: u.host, port: u.port });
      }
    } catch (cause) {
      reject(failure(u, cause, 'no socket from the sandbox: '));
      return;
    }
    let buf = Buffer.alloc(0);
    const done = (err: Error | undefined, reply?: Buffer) => {
      clearTimeout(timer);
      sock.removeAllListeners('data');
      sock.on('error', () => {});
      sock.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => done(new DnsError('DNS_UPSTREAM_TIMEOUT', `no answer from ${u.key} (tcp) in ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on('error', (cause) => done(failure(u, cause)));
    sock.on('end', () => done(new DnsError('DNS_UPSTREAM_ERROR', `${u.key} closed the connection`)));
    // RFC 1035 4.2.2 / RFC 7766 8: a two-byte length before each message.
    const len = Buffer.alloc(2);
    len.writeUInt16BE(query.length);
    sock.write(Buffer.concat([len, query]));
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      const reply = buf.subarray(2, 2 + buf.readUInt16BE(0));
      if (matches(reply, query, qEnd)) done(undefined, reply);
      else done(new DnsError('DNS_UPSTREAM_MISMATCH', `${u.key} answered another question`));
    });
  });
}

/** The exchange over real sockets: the server's own, or a sandbox's from its openers. */
export const socketExchange: Exchange = (u, query, useTcp, timeoutMs, sockets) =>
  useTcp ? tcp(u, query, timeoutMs, sockets) : udp(u, query, timeoutMs, sockets);
