import { type ChildProcess, execFile, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DgramTransport, type DnsServer, type SandboxSpec, type UpstreamSockets } from '../src/index.js';
import { decode, encode, type Message } from '../src/internal.js';

// Real sockets on 127.0.0.1 only. Every helper registers how to undo what it made with a
// Cleanup, which the test file empties in afterEach, pass or fail.

export class Cleanup {
  readonly #undo: (() => unknown)[] = [];
  add(fn: () => unknown): void {
    this.#undo.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.#undo.splice(0).reverse()) await fn();
  }
}

const run = promisify(execFile);

/** What `dig @127.0.0.1 -p port ...` prints (one try, short timeout). */
export async function dig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+timeout=3', ...args]);
  return stdout;
}

/** The status dig reports: NOERROR, NXDOMAIN, REFUSED... */
export async function digStatus(port: number, ...args: string[]): Promise<string> {
  return /status: (\w+)/.exec(await dig(port, ...args))?.[1] ?? 'no answer';
}

/** `dig +short` lines, sorted. */
export async function digShort(port: number, ...args: string[]): Promise<string[]> {
  return (await dig(port, '+short', ...args)).split('\n').filter(Boolean).sort();
}

/** Sends one datagram to 127.0.0.1:port and resolves with the first reply (3 s at most). */
export async function udpExchange(port: number, packet: Buffer): Promise<Buffer> {
  const s = dgram.createSocket('udp4');
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply over UDP')), 3000);
      s.once('message', (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      s.send(packet, port, '127.0.0.1');
    });
  } finally {
    s.close();
  }
}

/** Sends one message over a fresh TCP connection to 127.0.0.1:port (RFC 1035 4.2.2 framing). */
export async function tcpExchange(port: number, packet: Buffer): Promise<Buffer> {
  const s = net.connect(port, '127.0.0.1');
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply over TCP')), 3000);
      let buf = Buffer.alloc(0);
      s.on('error', reject);
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          clearTimeout(timer);
          resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        }
      });
      s.write(Buffer.concat([Buffer.from([packet.length >> 8, packet.length & 255]), packet]));
    });
  } finally {
    s.destroy();
  }
}

/** Binds UDP and TCP on 127.0.0.1 (one port for both) and hands them to the server as a sandbox. */
export async function addLoopbackSandbox(
  server: DnsServer,
  id: string,
  spec: Omit<SandboxSpec, 'udp' | 'tcp'>,
): Promise<number> {
  const { udp, tcp, port } = await bindPair();
  server.addSandbox(id, { ...spec, udp: new DgramTransport(udp), tcp });
  return port;
}

async function bindPair(): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  for (let i = 0; ; i++) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    const port = udp.address().port;
    const tcp = net.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, '127.0.0.1', resolve);
      });
      return { udp, tcp, port };
    } catch (err) {
      udp.close();
      if (i > 20) throw err;
    }
  }
}

/** Where a query to a test upstream came from. */
export interface Source {
  transport: 'udp' | 'tcp';
  address: string;
  port: number;
}

/** A test upstream on loopback: `answer` decides each reply (undefined: stay silent). */
export async function testUpstream(
  cleanup: Cleanup,
  answer: (q: Message, tcp: boolean, from: Source) => Message | undefined,
): Promise<{ address: string; queries: Message[]; sources: Source[] }> {
  const { udp, tcp, port } = await bindPair();
  const queries: Message[] = [];
  const sources: Source[] = [];
  const reply = (buf: Buffer, isTcp: boolean, from: Source): Buffer | undefined => {
    const q = decode(buf);
    queries.push(q);
    sources.push(from);
    const r = answer(q, isTcp, from);
    return r && encode({ ...r, id: q.id, type: 'response', questions: q.questions });
  };
  udp.on('message', (msg, rinfo) => {
    const r = reply(msg, false, { transport: 'udp', address: rinfo.address, port: rinfo.port });
    if (r) udp.send(r, rinfo.port, rinfo.address);
  });
  const conns = new Set<net.Socket>();
  tcp.on('connection', (s) => {
    conns.add(s);
    s.on('close', () => conns.delete(s));
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const from: Source = { transport: 'tcp', address: s.remoteAddress!, port: s.remotePort! };
        const r = reply(buf.subarray(2, 2 + buf.readUInt16BE(0)), true, from);
        buf = buf.subarray(2 + buf.readUInt16BE(0));
        if (r) s.write(Buffer.concat([Buffer.from([r.length >> 8, r.length & 255]), r]));
      }
    });
  });
  cleanup.add(async () => {
    for (const s of conns) s.destroy();
    await new Promise<void>((r) => tcp.close(() => r()));
    await new Promise<void>((r) => udp.close(() => r()));
  });
  return { address: `127.0.0.1:${port}`, queries, sources };
}

/**
 * Socket openers as the sidecar serves a sandbox's, with a loopback address standing in for the
 * sandbox's namespace: UDP sockets bound there at once (a synchronous lookup, as the sidecar
 * binds inside a namespace), and TCP sockets that the exchange connects from there (a socket made
 * in a namespace has its source with it; this stand-in takes it as a localAddress at connect).
 * Records each call, and the local port of each TCP socket once it connects.
 */
export function loopbackSockets(address: string): UpstreamSockets & { calls: string[]; tcpPorts: number[] } {
  const calls: string[] = [];
  const tcpPorts: number[] = [];
  return {
    calls,
    tcpPorts,
    udp(family) {
      calls.push(`udp${family}`);
      const s = dgram.createSocket({
        type: family === 6 ? 'udp6' : 'udp4',
        lookup: ((host: string, _family: number, cb: (e: null, a: string, f: number) => void) =>
          cb(null, host, family)) as never,
      });
      s.bind(0, address);
      return s;
    },
    tcp(family) {
      calls.push(`tcp${family}`);
      const s = new net.Socket();
      const connect = s.connect.bind(s) as (o: net.TcpSocketConnectOpts) => net.Socket;
      Object.assign(s, { connect: (o: net.TcpSocketConnectOpts) => connect({ ...o, localAddress: address }) });
      s.once('connect', () => tcpPorts.push(s.localPort!));
      return s;
    },
  };
}

/** dnsmasq from Debian on loopback, answering from a hosts file the test writes; nothing upstream. */
export async function startDnsmasq(cleanup: Cleanup, hosts: string, extra: string[] = []): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cnmd-dnsmasq-'));
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'hosts'), hosts);
  // A free port: bind, note it, let go (dnsmasq binds it a moment later).
  const { udp, tcp, port } = await bindPair();
  udp.close();
  await new Promise<void>((r) => tcp.close(() => r()));
  const child: ChildProcess = spawn(
    '/usr/sbin/dnsmasq',
    [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      `--addn-hosts=${join(dir, 'hosts')}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      `--port=${port}`,
      '--pid-file=',
      '--user=root',
      '--group=root',
      ...extra,
    ],
    { stdio: 'ignore' },
  );
  cleanup.add(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });
  // Ready when it answers over TCP.
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return `127.0.0.1:${port}`;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('dnsmasq did not start');
}
