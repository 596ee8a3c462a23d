import type net from 'node:net';
import type { SandboxContext } from './chain.js';
import { DnsError } from './errors.js';
import type { TcpListener } from './tcp.js';
import type { UdpTransport } from './transport.js';
import type { UpstreamSockets } from './upstream/exchange.js';
import { parseUpstream, type Upstream } from './upstream/upstream-address.js';
import type { View } from './view.js';

/**
 * How the server serves a sandbox's names outside the table: given to addSandbox, and changed
 * with configureSandbox, where a key left out keeps its value and a key given as undefined goes
 * back to the default.
 */
export interface SandboxConfig {
  /** Its upstreams (`ip`, `ip:port`); default the server's. */
  upstreams?: string[];
  /** false (internal networks): names outside the table get REFUSED. Default true. */
  forward?: boolean;
  /**
   * The ndots its resolv.conf sets itself, as Docker reads it: the last `ndots:N` among the
   * container's `--dns-option`s when it was given any (they replace the host's options), else
   * among the host's resolv.conf options; undefined when neither sets one (Docker then writes
   * ndots:0). With N > 0, A and AAAA queries for single-label names outside the table get
   * NOERROR with no answer, never forwarded (handlers/ndots.ts).
   */
  ndots?: number;
  /**
   * How its forwarded queries reach its upstreams: socket openers that the sidecar serves from
   * inside the sandbox's namespace, so that the upstreams see the container (Docker dials a
   * container's own `--dns` servers from its namespace). Default: the server's own sockets, in
   * the server's namespace. What it forwards this way is cached, and its upstreams' health kept,
   * apart from other sandboxes'.
   */
  sockets?: UpstreamSockets;
}

/** What the sidecar hands the server for one sandbox. */
export interface SandboxSpec extends SandboxConfig {
  /** UDP, already bound inside the sandbox (127.0.0.11:53); the server owns it from now on. */
  udp?: UdpTransport;
  /** TCP: a listening net.Server, or the fd of a listening socket; owned by the server too. */
  tcp?: net.Server | { fd: number };
  /** The networks the sandbox is on: it sees only their names. */
  networks: string[];
}

export class Sandbox implements SandboxContext {
  readonly id: string;
  /** Unique among the sandboxes of a server's life, even when an id comes back. */
  readonly token: string;
  view: View;
  forward = true;
  ndots: number | undefined;
  sockets: UpstreamSockets | undefined;
  inflight = 0;
  udp: UdpTransport | undefined;
  /** Whether udp says when a delivery ends (UdpTransport.batches). */
  batches = false;
  tcp: TcpListener | undefined;
  own: Upstream[] | undefined;
  readonly #defaults: () => readonly Upstream[];

  constructor(id: string, token: string, view: View, defaults: () => readonly Upstream[]) {
    this.id = id;
    this.token = token;
    this.view = view;
    this.#defaults = defaults;
  }

  get networks(): readonly string[] {
    return this.view.networks;
  }

  get upstreams(): readonly Upstream[] {
    return this.own ?? this.#defaults();
  }

  get route(): string {
    return this.sockets ? this.token : '';
  }
}

function invalid(message: string): never {
  throw new DnsError('DNS_INVALID_OPTION', message);
}

/**
 * Validates every key of a config before anything changes, and returns what applies it: a bad
 * config throws (DNS_INVALID_OPTION, DNS_INVALID_UPSTREAM) and changes nothing.
 */
export function checkConfig(config: SandboxConfig): (sb: Sandbox) => void {
  if (typeof config !== 'object' || config === null) invalid('a sandbox config must be an object');
  const { upstreams, forward, ndots, sockets } = config;
  if (upstreams !== undefined && !Array.isArray(upstreams)) invalid('upstreams must be a list of addresses');
  const own = upstreams?.map(parseUpstream);
  if (forward !== undefined && typeof forward !== 'boolean') invalid('forward must be a boolean');
  if (ndots !== undefined && !(Number.isSafeInteger(ndots) && ndots >= 0)) {
    invalid(`ndots must be an integer of 0 or more, got ${String(ndots)}`);
  }
  if (sockets !== undefined && !(typeof sockets?.udp === 'function' && typeof sockets.tcp === 'function')) {
    invalid('sockets must have udp(family) and tcp(family) socket openers');
  }
  return (sb) => {
    if ('upstreams' in config) sb.own = own;
    if ('forward' in config) sb.forward = forward ?? true;
    if ('ndots' in config) sb.ndots = ndots;
    if ('sockets' in config) sb.sockets = sockets;
  };
}
