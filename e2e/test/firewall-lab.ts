// A simulated host for the firewall tests, all in namespaces of its own (never the machine's):
// a "host" namespace where the firewall runs, bridges in it with sandboxes attached by veths,
// and an "internet" namespace behind the host's uplink. Addresses are from TEST-NET ranges
// (RFC 5737, RFC 3849) and private ones; no route leads out of the lab.
import { type ChildProcess, spawn } from 'node:child_process';
import { NftablesFirewall } from '@cnmd/sidecar/internal';
import { Netns } from '../src/netns.js';

/** The host's address on the "internet", and the internet peer's. */
export const HOST = '203.0.113.1';
export const PEER = '203.0.113.2';
export const HOST6 = '2001:db8:1::1';
export const PEER6 = '2001:db8:1::2';

// Echo servers answer with the address they see the client at (IPv4-mapped addresses as IPv4).
const SERVER = `
const [proto, port] = process.argv.slice(1);
const plain = (a) => a.replace(/^::ffff:/, '');
if (proto === 'tcp') {
  require('node:net').createServer((s) => s.end(plain(s.remoteAddress) + '\\n')).listen(+port, '::', () => console.log('ready'));
} else {
  const u = require('node:dgram').createSocket('udp6');
  u.on('message', (_, r) => u.send(plain(r.address) + '\\n', r.port, r.address));
  u.bind(+port, '::', () => console.log('ready'));
}`;

// A client prints the server's answer, or nothing when it gets none in time.
const CLIENT = `
const [proto, host, port, ms] = process.argv.slice(1);
const done = (s) => { process.stdout.write(s); process.exit(0); };
setTimeout(() => done(''), +ms);
if (proto === 'tcp') {
  let got = '';
  const c = require('node:net').connect(+port, host);
  c.on('data', (d) => (got += d)).on('end', () => done(got)).on('error', () => done(''));
} else {
  const u = require('node:dgram').createSocket(require('node:net').isIPv6(host) ? 'udp6' : 'udp4');
  u.on('message', (d) => done(String(d))).on('error', () => done(''));
  u.send('?', +port, host);
}`;

export class Lab implements AsyncDisposable {
  readonly host: Netns;
  readonly inet: Netns;
  readonly #namespaces: Netns[];
  readonly #procs: ChildProcess[] = [];
  readonly #firewalls: NftablesFirewall[] = [];
  #veths = 0;

  private constructor(host: Netns, inet: Netns) {
    this.host = host;
    this.inet = inet;
    this.#namespaces = [host, inet];
  }

  /** `brNetfilter`: whether bridged IP traffic goes through the host's inet hooks
   * (net.bridge.bridge-nf-call-ip{,6}tables; on where br_netfilter is loaded, as on Docker hosts). */
  static async create(opts: { brNetfilter?: boolean } = {}): Promise<Lab> {
    const host = await Netns.create('cnmd-fwh');
    const inet = await Netns.create('cnmd-fwi').catch(async (e) => {
      await host.remove();
      throw e;
    });
    const lab = new Lab(host, inet);
    try {
      const h = (...a: string[]) => host.exec('ip', a);
      const i = (...a: string[]) => lab.inet.exec('ip', a);
      await h('link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lab.inet.name);
      await h('addr', 'add', `${HOST}/24`, 'dev', 'uplink');
      await h('addr', 'add', `${HOST6}/64`, 'dev', 'uplink', 'nodad');
      await h('link', 'set', 'uplink', 'up');
      await i('addr', 'add', `${PEER}/24`, 'dev', 'eth0');
      await i('addr', 'add', `${PEER6}/64`, 'dev', 'eth0', 'nodad');
      await i('link', 'set', 'eth0', 'up');
      // The internet knows the way to the sandboxes: a firewall that lets it in would show.
      await i('route', 'add', '10.0.0.0/8', 'via', HOST);
      await i('-6', 'route', 'add', 'fd00::/8', 'via', HOST6);
      const bnf = opts.brNetfilter ? '1' : '0';
      await host.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
      await host.exec('sysctl', [
        '-q',
        '-w',
        `net.bridge.bridge-nf-call-iptables=${bnf}`,
        `net.bridge.bridge-nf-call-ip6tables=${bnf}`,
      ]);
    } catch (e) {
      await lab[Symbol.asyncDispose]();
      throw e;
    }
    return lab;
  }

  /** A firewall programming this lab's host namespace; closed with the lab. */
  firewall(): NftablesFirewall {
    const fw = new NftablesFirewall({ netns: this.host.name });
    this.#firewalls.push(fw);
    return fw;
  }

  /** A bridge in the host with its gateway addresses ("10.1.0.1/24", "fd00:a::1/64"). */
  async bridge(name: string, gw: string, gw6?: string): Promise<void> {
    const h = (...a: string[]) => this.host.exec('ip', a);
    await h('link', 'add', name, 'type', 'bridge');
    await h('addr', 'add', gw, 'dev', name);
    if (gw6) await h('addr', 'add', gw6, 'dev', name, 'nodad');
    await h('link', 'set', name, 'up');
  }

  /** A sandbox on a bridge: eth0 with `addr` ("10.1.0.2/24"), default routes via the gateways. */
  async sandbox(bridge: string, addr: string, gw: string, addr6?: string, gw6?: string): Promise<Netns> {
    const ns = await Netns.create('cnmd-fws');
    this.#namespaces.push(ns);
    const port = `veth${this.#veths++}`;
    await this.host.exec('ip', ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    await this.host.exec('ip', ['link', 'set', port, 'master', bridge, 'up']);
    await ns.exec('ip', ['addr', 'add', addr, 'dev', 'eth0']);
    if (addr6) await ns.exec('ip', ['addr', 'add', addr6, 'dev', 'eth0', 'nodad']);
    await ns.exec('ip', ['link', 'set', 'eth0', 'up']);
    await ns.exec('ip', ['route', 'add', 'default', 'via', gw]);
    if (gw6) await ns.exec('ip', ['-6', 'route', 'add', 'default', 'via', gw6]);
    return ns;
  }

  /** An echo server in a namespace (TCP or UDP, IPv4 and IPv6), killed with the lab. */
  async server(ns: Netns, proto: 'tcp' | 'udp', port: number): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', SERVER, proto, String(port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.#procs.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`server ${proto}/${port} in ${ns.name} exited (${code})`)));
    });
  }

  /** What a server at host:port answers the client in `ns`; '' when nothing comes back. */
  async probe(ns: Netns, proto: 'tcp' | 'udp', host: string, port: number, ms = 3000): Promise<string> {
    return (await ns.exec(process.execPath, ['-e', CLIENT, proto, host, String(port), String(ms)])).trim();
  }

  async ping(ns: Netns, addr: string): Promise<boolean> {
    return ns.exec('ping', ['-c', '1', '-W', '1', addr]).then(
      () => true,
      () => false,
    );
  }

  /** The host's whole ruleset, as `nft list ruleset` prints it. */
  ruleset(): Promise<string> {
    return this.host.exec('nft', ['list', 'ruleset']);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const fw of this.#firewalls) await fw.close().catch(() => {});
    for (const p of this.#procs) {
      if (p.exitCode === null && p.signalCode === null) {
        const gone = new Promise((r) => p.once('exit', r));
        p.kill();
        await gone;
      }
    }
    // Deleting a namespace takes its links, its nftables tables and its conntrack with it.
    for (const ns of this.#namespaces.reverse()) await ns.remove().catch(() => {});
  }
}
