// Small servers run inside test namespaces: an HTTP server that answers with a fixed text
// (so a test sees which backend served it), and a UDP echo that prefixes its name. Killed and
// reaped by stop(), or by `await using`.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Netns } from './netns.js';

// Sends one datagram from a given source port and prints the answer ('' after 2 s).
const UDP_ONCE = `
const [host, port, from] = process.argv.slice(1);
const u = require('node:dgram').createSocket(host.includes(':') ? 'udp6' : 'udp4');
const done = (s) => { process.stdout.write(s); process.exit(0); };
setTimeout(() => done(''), 2000);
u.on('message', (d) => done(String(d)));
u.bind(+from, () => u.send('?', +port, host));`;

/** One UDP question from `ns`, from source port `from` (the same port: the same conntrack
 * flow), to host:port; the answer, or '' when none came in 2 s. */
export async function udpOnce(ns: Netns, host: string, port: number, from: number): Promise<string> {
  return (await ns.exec(process.execPath, ['-e', UDP_ONCE, host, String(port), String(from)])).trim();
}

export class NsServer {
  readonly #proc: ChildProcess;
  readonly ready: Promise<void>;

  private constructor(proc: ChildProcess) {
    this.#proc = proc;
    this.ready = new Promise((resolve, reject) => {
      proc.stdout?.once('data', () => resolve());
      proc.once('exit', (code) => reject(new Error(`server exited (${code})`)));
    });
  }

  /** HTTP on `port` (all addresses, IPv4 and IPv6), answering `text`. */
  static async http(ns: Netns, port: number, text: string): Promise<NsServer> {
    const code = `require('http').createServer((q,s)=>s.end(${JSON.stringify(text)})).listen(${port},'::',()=>console.log('up'))`;
    return NsServer.#start(ns, code);
  }

  /** UDP on `port`: answers each datagram with `text: <datagram>`. */
  static async udpEcho(ns: Netns, port: number, text: string): Promise<NsServer> {
    const code = `const s=require('dgram').createSocket('udp6');s.on('message',(m,r)=>s.send(${JSON.stringify(text)}+': '+m,r.port,r.address));s.bind(${port},'::',()=>console.log('up'))`;
    return NsServer.#start(ns, code);
  }

  static async #start(ns: Netns, code: string): Promise<NsServer> {
    const proc = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const server = new NsServer(proc);
    await server.ready;
    return server;
  }

  async stop(): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return;
    const gone = new Promise((r) => this.#proc.once('exit', r));
    this.#proc.kill('SIGKILL');
    await gone;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
