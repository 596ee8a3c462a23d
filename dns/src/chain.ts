import { lower } from './dns-name.js';
import type { Rr } from './rr.js';
import type { TableReader } from './table/types.js';
import type { UpstreamSockets } from './upstream/exchange.js';
import type { UpstreamMessage } from './upstream/raw-message.js';
import type { Upstream } from './upstream/upstream-address.js';

// The shape of the handler chain (CoreDNS plugin/plugin.go): a plugin wraps the next handler and
// either answers or passes the request on. The order lives in one list, handlers/index.ts.

/** What a request knows of the sandbox that asked. */
export interface SandboxContext {
  readonly id: string;
  /** The networks the sandbox is on, in the order the sidecar gave. */
  readonly networks: readonly string[];
  readonly upstreams: readonly Upstream[];
  /** false on internal networks: names outside the table get REFUSED. */
  readonly forward: boolean;
  /** The ndots its resolv.conf sets explicitly; undefined when it sets none (handlers/ndots.ts). */
  readonly ndots: number | undefined;
  /** Its own way to its upstreams; undefined: the server's sockets. */
  readonly sockets: UpstreamSockets | undefined;
  /**
   * '' when it forwards through the server's sockets, else a name for its own path, unique to
   * this sandbox while the server runs: what reached the upstreams that way is cached and judged
   * apart from what reached them from anywhere else.
   */
  readonly route: string;
  /** Forwarded queries of this sandbox awaiting an upstream. */
  inflight: number;
}

/** One reading of the asked name (libnetwork's `a.b` rule): a name looked up on some networks. */
export interface Candidate {
  readonly name: string;
  readonly networks: readonly string[];
  /** Some handler holds the name on one of the networks (even with no record of the asked type). */
  known: boolean;
  readonly answers: Rr[];
  readonly additionals: Rr[];
}

export interface Request {
  /** Lower-cased asked name, no trailing dot ('' for the root). */
  readonly lname: string;
  /** The same in wire form (dns-name.ts wireKey): unambiguous even for labels holding dots. */
  readonly key: string;
  readonly type: number;
  readonly class: number;
  readonly sandbox: SandboxContext;
  readonly table: TableReader;
  /** Readings of the name in the order they are tried; filled by the table's handlers. */
  readonly candidates: Candidate[];
  /** For forwarding: the query's question section as asked, and its transport and EDNS. */
  readonly question: Buffer;
  readonly tcp: boolean;
  readonly flags: number;
  readonly edns: { udpSize: number; dnssecOk: boolean } | undefined;
}

export interface Reply {
  rcode: number;
  /** Who answered: the name table, the cache, an upstream, or the server itself (errors). */
  source: 'table' | 'cache' | 'upstream' | 'server';
  /** Table answers. */
  answers?: Rr[];
  additionals?: Rr[];
  /** Cache and upstream answers, as received. */
  message?: UpstreamMessage;
  /** Seconds since the message was received (cache hits). */
  age?: number;
}

export type Handler = (req: Request) => Reply | Promise<Reply>;
export type Plugin = (next: Handler) => Handler;

export interface PluginContext {
  /** TTL of the table's answers, seconds. */
  ttl: number;
}

export type PluginFactory<C extends PluginContext = PluginContext> = (ctx: C) => Plugin;

/** Builds a handler from plugins, the first one outermost. */
export function compose(plugins: readonly Plugin[], last: Handler): Handler {
  return plugins.reduceRight<Handler>((next, p) => p(next), last);
}

/**
 * The readings of a name, in libnetwork's order (sandbox.ResolveName): `a.b.c` on every network
 * of the sandbox, then `a.b` on network `c`, then `a` on network `b.c`. Network names compare
 * case-insensitively, as DNS names do.
 */
export function candidates(lname: string, networks: readonly string[]): Candidate[] {
  const out: Candidate[] = [{ name: lname, networks, known: false, answers: [], additionals: [] }];
  for (let i = lname.lastIndexOf('.'); i > 0; i = lname.lastIndexOf('.', i - 1)) {
    const net = lname.slice(i + 1);
    const on = networks.filter((n) => lower(n) === net);
    if (on.length > 0) out.push({ name: lname.slice(0, i), networks: on, known: false, answers: [], additionals: [] });
  }
  return out;
}

/** Adds a record unless the candidate has it already (one address on two networks answers once). */
export function addRecord(list: Rr[], rr: Rr): void {
  for (const r of list) if (r.type === rr.type && r.rdata.equals(rr.rdata) && r.owner === rr.owner) return;
  list.push(rr);
}
