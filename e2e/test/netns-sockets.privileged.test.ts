// Sockets made inside a sandbox and served by this process: a client inside the sandbox
// reaches them; the namespace this process runs in does not.
import net from 'node:net';
import { bindUdpIn, listenTcpIn } from '@cnmd/sidecar';
import { expect } from 'vitest';
import { test } from '../src/fixtures.js';

test('a UDP socket made inside answers a client inside the sandbox at 127.0.0.11:53', async ({ netns }) => {
  const socket = await bindUdpIn(netns.path, '127.0.0.11', 53);
  try {
    socket.on('message', (msg, from) => socket.send(`pong ${msg.toString().trim()}`, from.port, from.address));
    // netcat-openbsd: send one datagram, print the answer, quit after one (-W 1) or 2 s.
    const out = await netns.exec('nc', ['-u', '-W', '1', '-w', '2', '127.0.0.11', '53'], { input: 'ping\n' });
    expect(out).toBe('pong ping');
  } finally {
    socket.close();
  }
});

test('a TCP listener made inside accepts from the sandbox, not from this namespace', async ({ netns }) => {
  const server = await listenTcpIn(netns.path, '127.0.0.1', 0);
  try {
    const { port } = server.address() as net.AddressInfo;
    server.on('connection', (c) => c.end('hello\n'));
    expect(await netns.exec('nc', ['-N', '-w', '2', '127.0.0.1', String(port)], { input: '' })).toBe('hello\n');
    const refused = await new Promise<string>((resolve) => {
      const c = net.connect({ host: '127.0.0.1', port });
      c.on('connect', () => {
        c.destroy();
        resolve('connected');
      });
      c.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('an address that exists only in the sandbox can be bound there, and not here', async ({ netns }) => {
  await netns.exec('ip', ['addr', 'add', '198.51.100.7/32', 'dev', 'lo']);
  const server = await listenTcpIn(netns.path, '198.51.100.7', 0);
  await new Promise((r) => server.close(r));
  await expect(listenTcpIn(`/proc/${process.pid}/ns/net`, '198.51.100.7', 0)).rejects.toMatchObject({
    code: 'SIDECAR_SOCKET',
    errno: 99, // EADDRNOTAVAIL
  });
});
