// A load-balancing lab, all in namespaces of its own (never the machine's): a "host" namespace
// holding a bridge, and joined to it by veths an LB sandbox (holding every VIP, as libnetwork's
// lb_<network> endpoint does), three backends serving HTTP and UDP that answer with their name,
// and a client. Addresses: 10.x and 2001:db8::/32 (RFC 3849), inside these namespaces only.
import { type ChildProcess, spawn } from 'node:child_process';
import { conntrackTool, LoadBalancer, NftablesDataPlane } from '@cnmd/lb';
import { onTestFinished } from 'vitest';
import { Netns } from '../src/netns.js';
import { udpOnce } from '../src/servers.js';

export const SUBNET4 = '10.123.0.0/24';
export const SUBNET6 = '2001:db8:7b::/64';
export const LB4 = '10.123.0.2';
export const LB6 = '2001:db8:7b::2';
export const BACKENDS = [1, 2, 3].map((i) => ({
  name: `b${i}`,
  v4: `10.123.0.${10 + i}`,
  v6: `2001:db8:7b::${10 + i}`,
}));
export const CLIENT4 = '10.123.0.50';
export const CLIENT6 = '2001:db8:7b::50';
export const NETWORK = { name: 'front', subnets: [SUBNET4, SUBNET6] };

// HTTP on 8080 (`?ms=N` answers after N ms) and UDP on 5353, both naming the backend.
const SERVER = `
const name = process.argv[1];
require('node:http').createServer((q, s) => {
  const ms = Number(new URL(q.url, 'http://x').searchParams.get('ms') ?? 0);
  setTimeout(() => s.end(name + '\\n'), ms);
}).listen(8080, '::', () => {
  const u = require('node:dgram').createSocket('udp6');
  u.on('message', (_, r) => u.send(name + '\\n', r.port, r.address));
  u.bind(5353, '::', () => console.log('ready'));
});`;

// A client that keeps one connection: GET on each line of stdin, prints "<local port> <body>".
const KEEPALIVE = `
const [host, port] = process.argv.slice(1);
const agent = new (require('node:http').Agent)({ keepAlive: true, maxSockets: 1 });
const get = (path) => require('node:http').get({ host, port: +port, path, agent }, (r) => {
  const local = r.socket.localPort;
  let body = '';
  r.on('data', (d) => (body += d)).on('end', () => console.log(local + ' ' + body.trim()));
}).on('error', (e) => console.log('error ' + e.message));
require('node:readline').createInterface({ input: process.stdin }).on('line', get);`;

export class LbLab implements AsyncDisposable {
  readonly namespaces: Netns[] = [];
  readonly #procs: ChildProcess[] = [];
  readonly #balancers: LoadBalancer[] = [];
  host!: Netns;
  lbns!: Netns;
  client!: Netns;
  backends: Netns[] = [];
  #disposed = false;

  /** A lab removed when the test ends, whether it passes, fails or times out. */
  static async forTest(): Promise<LbLab> {
    const lab = await LbLab.create();
    onTestFinished(() => lab[Symbol.asyncDispose]());
    return lab;
  }

  static async create(): Promise<LbLab> {
    const lab = new LbLab();
    try {
      await lab.#build();
    } catch (e) {
      await lab[Symbol.asyncDispose]();
      throw e;
    }
    return lab;
  }

  async #build(): Promise<void> {
    this.host = await this.#ns('cnmd-lbh');
    await this.host.exec('ip', ['link', 'add', 'br0', 'type', 'bridge']);
    await this.host.exec('ip', ['link', 'set', 'br0', 'up']);
    this.lbns = await this.#join('cnmd-lbs', LB4, LB6);
    // The LB sandbox forwards what it DNATs back out of the interface it came in by: no ICMP
    // redirects to the clients (they would point them at the backends, around the LB).
    await this.lbns.exec('sysctl', [
      '-q',
      '-w',
      'net.ipv4.ip_forward=1',
      'net.ipv6.conf.all.forwarding=1',
      'net.ipv4.conf.all.send_redirects=0',
      'net.ipv4.conf.eth0.send_redirects=0',
    ]);
    for (const b of BACKENDS) this.backends.push(await this.#join('cnmd-lbb', b.v4, b.v6));
    this.client = await this.#join('cnmd-lbc', CLIENT4, CLIENT6);
    await Promise.all(BACKENDS.map((b, i) => this.#serve(this.backends[i]!, b.name)));
  }

  async #ns(prefix: string): Promise<Netns> {
    const ns = await Netns.create(prefix);
    this.namespaces.push(ns);
    return ns;
  }

  async #join(prefix: string, v4: string, v6: string): Promise<Netns> {
    const ns = await this.#ns(prefix);
    const port = `v${this.namespaces.length}`;
    await this.host.exec('ip', ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    await this.host.exec('ip', ['link', 'set', port, 'master', 'br0', 'up']);
    await ns.exec('ip', ['addr', 'add', `${v4}/24`, 'dev', 'eth0']);
    await ns.exec('ip', ['addr', 'add', `${v6}/64`, 'dev', 'eth0', 'nodad']);
    await ns.exec('ip', ['link', 'set', 'eth0', 'up']);
    return ns;
  }

  async #serve(ns: Netns, name: string): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', SERVER, name], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.#procs.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`backend ${name} exited (${code})`)));
    });
  }

  /** A load balancer on the nftables data plane in the LB sandbox, closed with the lab. */
  balancer(opts: { drainMs?: number } = {}): LoadBalancer {
    const lb = new LoadBalancer({
      dataplane: new NftablesDataPlane({ netns: this.lbns.name }),
      conntrack: conntrackTool({ netns: this.lbns.name }),
      ...opts,
    });
    this.#balancers.push(lb);
    return lb;
  }

  /** Puts a VIP on the LB sandbox's interface (libnetwork: every VIP of the network, as a /32). */
  async vip(address: string): Promise<void> {
    const v6 = address.includes(':');
    await this.lbns.exec('ip', ['addr', 'add', `${address}/${v6 ? 128 : 32}`, 'dev', 'eth0', ...(v6 ? ['nodad'] : [])]);
  }

  /** The body a new connection from the client gets (curl), '' when none. */
  async curl(url: string, ms = 3000): Promise<string> {
    return (await this.client.exec('curl', ['-s', '-g', '--max-time', String(ms / 1000), url]).catch(() => '')).trim();
  }

  async udp(host: string, port: number, from: number): Promise<string> {
    return udpOnce(this.client, host, port, from);
  }

  /** A client holding one kept-alive connection: `get(path)` resolves with [local port, body]. */
  keepAlive(host: string, port: number): { get(path: string): Promise<[number, string]> } {
    const child = spawn(
      'ip',
      ['netns', 'exec', this.client.name, process.execPath, '-e', KEEPALIVE, host, String(port)],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    this.#procs.push(child);
    const lines: string[] = [];
    const waiting: ((l: string) => void)[] = [];
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const w = waiting.shift();
        if (w) w(line);
        else lines.push(line);
      }
    });
    return {
      get(path) {
        child.stdin.write(`${path}\n`);
        return new Promise((resolve, reject) => {
          setTimeout(() => reject(new Error(`no answer to GET ${path} on the kept connection`)), 5000).unref();
          const take = (l: string) => {
            const [port, body] = l.split(' ');
            resolve([Number(port), body ?? '']);
          };
          const l = lines.shift();
          if (l !== undefined) take(l);
          else waiting.push(take);
        });
      },
    };
  }

  /** UDP flows conntrack holds in the LB sandbox for `vip`, as `conntrack -L` prints them. */
  async udpFlows(vip: string): Promise<string[]> {
    const family = vip.includes(':') ? 'ipv6' : 'ipv4';
    const out = await this.lbns.exec('conntrack', ['-L', '-f', family, '-p', 'udp', '--orig-dst', vip]).catch(() => '');
    return out.split('\n').filter((l) => l.startsWith('udp'));
  }

  /** The LB sandbox's cnmd_lb table, '' when there is none. */
  table(): Promise<string> {
    return this.lbns.exec('nft', ['list', 'table', 'inet', 'cnmd_lb']).catch(() => '');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const lb of this.#balancers) await lb.close().catch(() => {});
    for (const p of this.#procs) {
      if (p.exitCode === null && p.signalCode === null) {
        const gone = new Promise((r) => p.once('exit', r));
        p.kill();
        await gone;
      }
    }
    // Deleting a namespace takes its links, its nftables tables and its conntrack with it.
    for (const ns of this.namespaces.reverse()) await ns.remove().catch(() => {});
  }
}
