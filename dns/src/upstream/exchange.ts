import dgram from 'node:dgram';
import net from 'node:net';
import { DnsError } from '../errors.js';
import type { Upstream } from './upstream-address.js';

// One query to one upstream and its answer. Each UDP query gets its own socket, connected to the
// upstream: a random source port per query (RFC 5452 section 9.2), replies from anyone else
// filtered by the kernel, and a refused port reported at once (ICMP) rather than after a timeout.

/** Sends `query` and resolves with the matching reply; rejects DNS_UPSTREAM_TIMEOUT/_ERROR. */
export type Exchange = (upstream: Upstream, query: Buffer, tcp: boolean, timeoutMs: number) => Promise<Buffer>;

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

function udp(u: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  const qEnd = questionEnd(query);
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(u.host) ? 'udp6' : 'udp4');
    const done = (err: Error | undefined, reply?: Buffer) => {
      clearTimeout(timer);
      sock.removeAllListeners('message');
      sock.on('error', () => {});
      sock.close();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => done(new DnsError('DNS_UPSTREAM_TIMEOUT', `no answer from ${u.key} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on('error', (cause) => done(new DnsError('DNS_UPSTREAM_ERROR', `${u.key}: ${cause.message}`, { cause })));
    // Anything that is not the answer (a late reply to an earlier query, a forgery) is ignored.
    sock.on('message', (msg) => {
      if (matches(msg, query, qEnd)) done(undefined, msg);
    });
    // connect(2) can fail at once (EACCES for a broadcast address, ENETUNREACH with no route):
    // Node then calls back with the error, and a send on the unconnected socket would throw.
    sock.connect(u.port, u.host, ((cause?: Error) => {
      if (cause) done(new DnsError('DNS_UPSTREAM_ERROR', `${u.key}: ${cause.message}`, { cause }));
      else sock.send(query);
    }) as () => void);
  });
}

function tcp(u: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  const qEnd = questionEnd(query);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.host, port: u.port });
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
    sock.on('error', (cause) => done(new DnsError('DNS_UPSTREAM_ERROR', `${u.key}: ${cause.message}`, { cause })));
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

/** The exchange over real sockets, opened from the sidecar's own namespace. */
export const socketExchange: Exchange = (u, query, useTcp, timeoutMs) =>
  useTcp ? tcp(u, query, timeoutMs) : udp(u, query, timeoutMs);
