// DNS in every sandbox (DESIGN.md, flow step 4): a UDP and a TCP socket on 127.0.0.11:53
// made inside the sandbox and handed to the one DnsServer of the daemon, the name table kept
// in step with attach and detach, and for `ip netns` sandboxes an /etc/netns/NAME/resolv.conf
// that names 127.0.0.11, with search and options from the host's, as Docker writes.
//
// A sandbox's own settings (`--dns`, `--dns-search`, `--dns-option`, as docker run's) replace
// the host's: its own upstreams are asked from inside its namespace (sockets made there, as
// Docker does, so an upstream's ACL sees the container), its search and options go in its
// resolv.conf, and an ndots it sets turns on Docker's rule for single-label names.

import dgram from 'node:dgram';
import { mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { BatchUdpTransport, DgramTransport, type DnsServer, type SandboxConfig, type UdpTransport } from '@cnmd/dns';
import { SidecarError } from '../errors.js';
import type { DnsHooks } from '../network/hooks.js';
import type { EndpointRecord, NetworkRecord, RemoteEndpoint, ServiceRecord, ServiceTask } from '../network/records.js';
import { native } from '../sandbox/native.js';
import { type NetnsHandle, openNetns, withNetns } from '../sandbox/netns.js';
import { NftWorker } from '../sandbox/nft-worker.js';
import { upstreamSocketsIn } from '../sandbox/sockets.js';

export const RESOLVER = '127.0.0.11';

export interface DnsWiringOptions {
  server: DnsServer;
  /** The host's resolv.conf, for search and options lines. */
  hostResolvConf: string;
  /** Where `ip netns exec` looks for a namespace's own /etc files. */
  etcNetns?: string;
}

export class DnsWiring implements DnsHooks {
  readonly #o: Required<DnsWiringOptions>;
  readonly #nft = new NftWorker();
  /** Sandboxes that ask their own upstreams: their namespace, held open while served. */
  readonly #held = new Map<string, NetnsHandle>();

  constructor(o: DnsWiringOptions) {
    this.#o = { etcNetns: '/etc/netns', ...o };
  }

  async join(ep: EndpointRecord, net: NetworkRecord, networks: NetworkRecord[]): Promise<void> {
    const { server } = this.#o;
    server.table.upsertEndpoint({
      network: net.spec.name,
      id: ep.containerId,
      addresses: [ep.ip, ep.ip6].filter((a): a is string => !!a),
      aliases: ep.aliases,
      ...(ep.name ? { name: ep.name } : {}),
      ...(ep.hostname ? { hostname: ep.hostname } : {}),
    });
    const names = networks.map((n) => n.spec.name);
    const served = server.sandboxes().includes(ep.sandboxKey);
    // Settings given with this attach replace the sandbox's; a first attach without gets the host's.
    const own = ep.dns || !served ? await this.#settings(ep) : {};
    // A sandbox only on internal networks gets no forwarding (names outside the table: REFUSED),
    // unless it names its own servers, which it reaches from inside itself (as Docker does).
    const forward = networks.some((n) => !n.spec.internal) || this.#held.has(ep.sandboxKey);
    if (served) {
      server.setNetworks(ep.sandboxKey, names);
      server.configureSandbox(ep.sandboxKey, { forward, ...own });
      if (ep.dns && ep.netnsName) await this.#writeResolvConf(ep.netnsName, ep);
      return;
    }
    try {
      const [{ udp, tcp }] = await Promise.all([
        openResolverSockets(this.#nft, ep.sandbox),
        ep.netnsName ? this.#writeResolvConf(ep.netnsName, ep) : undefined,
      ]);
      server.addSandbox(ep.sandboxKey, { udp, tcp, networks: names, forward, ...own });
    } catch (err) {
      this.#release(ep.sandboxKey);
      throw err;
    }
  }

  /** The server's config for the sandbox's own resolver settings (the host's where it has none). */
  async #settings(ep: EndpointRecord): Promise<SandboxConfig> {
    const servers = ep.dns?.servers ?? [];
    const options = ep.dns?.options.length ? ep.dns.options : (await this.#host()).options;
    // Docker reads the last ndots:N of the options in force.
    const n = options.map((o) => /^ndots:(\d+)$/.exec(o)?.[1]).findLast((v) => v !== undefined);
    const ndots = n === undefined ? undefined : Number(n);
    this.#release(ep.sandboxKey);
    if (servers.length === 0) return { upstreams: undefined, sockets: undefined, ndots };
    // Held for as long as the sandbox is served: a path (/proc/PID/ns/net) may name another later.
    const handle = openNetns(ep.sandbox);
    this.#held.set(ep.sandboxKey, handle);
    return { upstreams: servers, sockets: upstreamSocketsIn(handle), ndots };
  }

  #release(key: string): void {
    this.#held.get(key)?.close();
    this.#held.delete(key);
  }

  async leave(ep: EndpointRecord, net: NetworkRecord | undefined, remaining: NetworkRecord[]): Promise<void> {
    const { server } = this.#o;
    if (net) server.table.removeEndpoint(net.spec.name, ep.containerId);
    const served = server.sandboxes().includes(ep.sandboxKey);
    if (remaining.length > 0) {
      if (served)
        server.setNetworks(
          ep.sandboxKey,
          remaining.map((n) => n.spec.name),
        );
      return;
    }
    // The last network: the resolver goes, even when it was not served (after a restart, or
    // because the sandbox died), so that no resolv.conf of ours outlives the sandbox.
    if (served) await server.removeSandbox(ep.sandboxKey);
    this.#release(ep.sandboxKey);
    await closeResolverNat(this.#nft, ep.sandbox);
    if (ep.netnsName) await this.#removeResolvConf(ep.netnsName);
  }

  service(net: NetworkRecord, svc: ServiceRecord, tasks: ServiceTask[] | undefined): void {
    const table = this.#o.server.table;
    if (!tasks) {
      table.removeService(net.spec.name, svc.spec.name);
      return;
    }
    table.upsertService({
      network: net.spec.name,
      name: svc.spec.name,
      mode: svc.spec.mode,
      vips: [svc.vip, svc.vip6].filter((v): v is string => !!v),
      ports: svc.spec.ports.filter((p) => p.name).map((p) => ({ name: p.name!, protocol: p.proto, port: p.port })),
      tasks: tasks.map((t) => ({
        name: t.name ?? t.containerId.slice(0, 12),
        addresses: [t.ip, t.ip6].filter((a): a is string => !!a),
        ready: (t.weight ?? 1) > 0,
      })),
    });
  }

  alias(net: NetworkRecord, ep: EndpointRecord, on: boolean): void {
    this.#names(net, { ...ep, hostname: undefined }, on); // the owner's hostname is its own
  }

  remote(net: NetworkRecord, ep: RemoteEndpoint, on: boolean): void {
    this.#names(net, ep, on);
  }

  /** The table's names of an endpoint known by its records alone (no sandbox of ours). */
  #names(net: NetworkRecord, ep: Omit<RemoteEndpoint, 'host' | 'id' | 'network'>, on: boolean): void {
    const table = this.#o.server.table;
    if (!on) {
      table.removeEndpoint(net.spec.name, ep.containerId);
      return;
    }
    table.upsertEndpoint({
      network: net.spec.name,
      id: ep.containerId,
      addresses: [ep.ip, ep.ip6].filter((a): a is string => !!a),
      aliases: ep.aliases,
      ...(ep.name ? { name: ep.name } : {}),
      ...(ep.hostname ? { hostname: ep.hostname } : {}),
    });
  }

  async close(): Promise<void> {
    await this.#nft.close();
    for (const key of [...this.#held.keys()]) this.#release(key);
  }

  /** The host's search/domain lines and options, read at most every few seconds. */
  async #host(): Promise<{ search: string[]; options: string[] }> {
    if (this.#hostCache && this.#hostCache.at > Date.now() - 5000) return this.#hostCache;
    const text = await readFile(this.#o.hostResolvConf, 'utf8').catch(() => '');
    const lines = text.split('\n').map((l) => l.trim().split(/\s+/));
    this.#hostCache = {
      at: Date.now(),
      search: lines.filter(([k]) => k === 'search' || k === 'domain').map((l) => l.join(' ')),
      options: lines.filter(([k]) => k === 'options').flatMap((l) => l.slice(1)),
    };
    return this.#hostCache;
  }

  #hostCache: { at: number; search: string[]; options: string[] } | undefined;

  /** /etc/netns/NAME/resolv.conf: 127.0.0.11, and the sandbox's search and options or the host's. */
  async #writeResolvConf(name: string, ep: EndpointRecord): Promise<void> {
    const host = await this.#host();
    const search = ep.dns?.search.length ? [`search ${ep.dns.search.join(' ')}`] : host.search;
    const options = ep.dns?.options.length ? ep.dns.options : host.options;
    const lines = ['# written by cnmd', `nameserver ${RESOLVER}`, ...search];
    if (options.length > 0) lines.push(`options ${options.join(' ')}`);
    const dir = `${this.#o.etcNetns}/${name}`;
    await mkdir(dir, { recursive: true });
    await writeFile(`${dir}/resolv.conf`, `${lines.join('\n')}\n`);
  }

  async #removeResolvConf(name: string): Promise<void> {
    const dir = `${this.#o.etcNetns}/${name}`;
    await rm(`${dir}/resolv.conf`, { force: true });
    await rmdir(dir).catch(() => {}); // only when empty: it may hold the user's own files
  }
}

/**
 * UDP and TCP sockets for the resolver, made inside the sandbox on 127.0.0.11 at ports the
 * kernel picks, and a NAT rule there that sends 127.0.0.11:53 to them, as libnetwork does:
 * port 53 itself stays free for a DNS server the container runs on 0.0.0.0:53.
 */
export async function openResolverSockets(
  nft: NftWorker,
  path: string,
): Promise<{ udp: UdpTransport; tcp: net.Server }> {
  const [udpFd, tcpFd] = withNetns(path, () => [native().udpBind(RESOLVER, 0), native().tcpListen(RESOLVER, 0)]);
  // recvmmsg/sendmmsg through the batch addon when it is built (3-4x less CPU per query),
  // else plain node:dgram on the same socket.
  let udp: UdpTransport;
  let udpPort: number;
  if (BatchUdpTransport.available()) {
    const batch = new BatchUdpTransport(udpFd);
    udp = batch;
    udpPort = batch.port;
  } else {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind({ fd: udpFd }, resolve));
    udp = new DgramTransport(socket);
    udpPort = socket.address().port;
  }
  const tcp = net.createServer();
  await new Promise<void>((resolve) => tcp.listen({ fd: tcpFd }, resolve));
  const tcpPort = (tcp.address() as net.AddressInfo).port;
  try {
    await nft.run(path, resolverNat(udpPort, tcpPort));
  } catch (err) {
    await udp.close();
    tcp.close();
    throw new SidecarError('SIDECAR_SOCKET', `cannot redirect ${RESOLVER}:53 in ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { udp, tcp };
}

/** The sandbox's `ip cnmd-dns` table, replaced whole in one transaction. */
export function resolverNat(udpPort: number, tcpPort: number): string {
  return [
    'add table ip cnmd-dns',
    'delete table ip cnmd-dns',
    'table ip cnmd-dns {',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    `    ip daddr ${RESOLVER} udp dport 53 dnat to ${RESOLVER}:${udpPort}`,
    `    ip daddr ${RESOLVER} tcp dport 53 dnat to ${RESOLVER}:${tcpPort}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Removes the redirect; the sandbox may be gone already. */
export async function closeResolverNat(nft: NftWorker, path: string): Promise<void> {
  // The sandbox may be gone, and its table with it.
  await nft.run(path, 'add table ip cnmd-dns\ndelete table ip cnmd-dns\n').catch(() => {});
}
