// Sockets that live in a sandbox and are served by this process's event loop: the DNS server's
// UDP and TCP sockets at 127.0.0.11:53 (DESIGN.md, flow step 4). The socket is made by the
// addon while inside (a TCP server would bind asynchronously, after the switch back), and the
// fd is handed to Node, which serves it from the original namespace as any other socket.

import dgram from 'node:dgram';
import { closeSync } from 'node:fs';
import net from 'node:net';
import { SidecarError } from '../errors.js';
import { native } from './native.js';
import { type NetnsHandle, withNetns } from './netns.js';

const pathOf = (netns: string | NetnsHandle): string => (typeof netns === 'string' ? netns : netns.path);

function open(kind: 'tcp' | 'udp', netns: string | NetnsHandle, address: string, port: number): number {
  if (!net.isIP(address) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SidecarError('SIDECAR_INVALID_ARGUMENT', `not an IP literal and port: ${address} ${port}`);
  }
  const path = pathOf(netns);
  return withNetns(netns, () => {
    try {
      return kind === 'tcp' ? native().tcpListen(address, port) : native().udpBind(address, port);
    } catch (cause) {
      const what = `${kind} ${address.includes(':') ? `[${address}]` : address}:${port} in ${path}`;
      throw new SidecarError('SIDECAR_SOCKET', `cannot open ${what}: ${(cause as Error).message}`, { cause });
    }
  });
}

/** A net.Server listening on address:port inside the namespace, already listening when resolved. */
export async function listenTcpIn(netns: string | NetnsHandle, address: string, port: number): Promise<net.Server> {
  const fd = open('tcp', netns, address, port);
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (cause) {
    server.close();
    closeSync(fd);
    throw new SidecarError('SIDECAR_SOCKET', `cannot serve the listener made in ${pathOf(netns)}`, { cause });
  }
  return server;
}

/** A dgram socket bound to address:port inside the namespace, ready when resolved. */
export async function bindUdpIn(netns: string | NetnsHandle, address: string, port: number): Promise<dgram.Socket> {
  const fd = open('udp', netns, address, port);
  const socket = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ fd }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (cause) {
    socket.close();
    throw new SidecarError('SIDECAR_SOCKET', `cannot serve the socket made in ${pathOf(netns)}`, { cause });
  }
  return socket;
}

/**
 * Sockets for a sandbox's forwarded DNS queries, made inside it (as Docker sends a container's
 * own upstream queries from its namespace): each call enters the namespace, makes one socket and
 * leaves, in the same tick. UDP: bound to the wildcard address at a kernel-chosen port, not
 * connected; TCP: unconnected. The DNS server connects and owns each. `netns` stays open while
 * the sandbox is served, so a path reused by another namespace is never entered by mistake.
 */
export function upstreamSocketsIn(netns: NetnsHandle): {
  udp(family: 4 | 6): dgram.Socket;
  tcp(family: 4 | 6): net.Socket;
} {
  return {
    udp(family) {
      const fd = open('udp', netns, family === 6 ? '::' : '0.0.0.0', 0);
      const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
      try {
        socket.bind({ fd }); // the fd is bound already: synchronous, address() answers at once
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      return socket;
    },
    tcp(family) {
      const fd = withNetns(netns, () => {
        try {
          return native().tcpSocket(family);
        } catch (cause) {
          throw new SidecarError('SIDECAR_SOCKET', `cannot open a tcp${family} socket in ${netns.path}`, { cause });
        }
      });
      // manualStart: Node would start reading an fd socket at once, and an unconnected one fails
      // that with ENOTCONN and is destroyed; it reads once connected (net.js afterConnect).
      return new net.Socket({ fd, manualStart: true } as net.SocketConstructorOpts);
    },
  };
}
