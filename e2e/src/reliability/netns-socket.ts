// A TCP connection from inside a network namespace (a sandbox's, or a simulated host's): the
// socket is made by the sidecar's addon while this thread is in the namespace, then connected
// from here as any other (DESIGN.md, entering a namespace from Node).
import net from 'node:net';
import { withNetns } from '@cnmd/sidecar';
import { native } from '@cnmd/sidecar/internal';

export function connectIn(netns: string, address: string, port: number): Promise<net.Socket> {
  const fd = withNetns(netns, () => native().tcpSocket(address.includes(':') ? 6 : 4));
  // manualStart: an unconnected fd socket would start reading at once and fail with ENOTCONN.
  const s = new net.Socket({ fd, manualStart: true } as net.SocketConstructorOpts);
  return new Promise((resolve, reject) => {
    s.once('error', (e) => {
      s.destroy();
      reject(e);
    });
    s.connect(port, address, () => {
      s.removeAllListeners('error');
      s.on('error', () => {});
      resolve(s);
    });
  });
}
