import type net from 'node:net';
import type { SandboxContext } from './chain.js';
import type { TcpListener } from './tcp.js';
import type { UdpTransport } from './transport.js';
import type { Upstream } from './upstream/upstream-address.js';
import type { View } from './view.js';

/** What the sidecar hands the server for one sandbox. */
export interface SandboxSpec {
  /** UDP, already bound inside the sandbox (127.0.0.11:53); the server owns it from now on. */
  udp?: UdpTransport;
  /** TCP: a listening net.Server, or the fd of a listening socket; owned by the server too. */
  tcp?: net.Server | { fd: number };
  /** The networks the sandbox is on: it sees only their names. */
  networks: string[];
  /** Its upstreams (`ip`, `ip:port`); default the server's. */
  upstreams?: string[];
  /** false (internal networks): names outside the table get REFUSED. Default true. */
  forward?: boolean;
}

export class Sandbox implements SandboxContext {
  readonly id: string;
  view: View;
  forward: boolean;
  inflight = 0;
  udp: UdpTransport | undefined;
  tcp: TcpListener | undefined;
  own: Upstream[] | undefined;
  readonly #defaults: () => readonly Upstream[];

  constructor(
    id: string,
    view: View,
    forward: boolean,
    own: Upstream[] | undefined,
    defaults: () => readonly Upstream[],
  ) {
    this.id = id;
    this.view = view;
    this.forward = forward;
    this.own = own;
    this.#defaults = defaults;
  }

  get networks(): readonly string[] {
    return this.view.networks;
  }

  get upstreams(): readonly Upstream[] {
    return this.own ?? this.#defaults();
  }
}
