import { randomInt } from 'node:crypto';
import { forwardChannel, upstreamChannel } from '../diagnostics.js';
import { isDnsError } from '../errors.js';
import { UpstreamStats } from '../stats.js';
import { type Exchange, questionEnd, type UpstreamSockets } from './exchange.js';
import { parseUpstream, type UpstreamMessage } from './raw-message.js';
import type { Upstream } from './upstream-address.js';

export interface ForwarderOptions {
  exchange: Exchange;
  /** Per upstream and attempt, ms (libnetwork: 4 s). */
  timeout: number;
  /** Failures in a row (timeouts, errors) before an upstream is skipped... */
  failuresToSkip: number;
  /** ...for this long, ms. */
  skipFor: number;
  now?: () => number;
  /** Counters per upstream key, kept when given (DnsServerOptions.metrics). */
  stats?: Map<string, UpstreamStats>;
}

export interface ForwardQuery {
  /** The question section as asked. */
  question: Buffer;
  flags: number;
  edns: { udpSize: number; dnssecOk: boolean } | undefined;
  tcp: boolean;
  sandbox: string;
  /**
   * A sandbox's own way to its upstreams; undefined: the server's sockets. `route` names the
   * path for the upstreams' health, which is the path's own: an upstream may answer from one
   * namespace and not from another.
   */
  via?: { route: string; sockets: UpstreamSockets };
}

interface Health {
  failures: number;
  until: number;
}

/**
 * Asks the upstreams in turn, as libnetwork does: the next one on a timeout, an error, SERVFAIL
 * or REFUSED; a truncated UDP answer is asked again over TCP (RFC 7766 section 5). An upstream
 * that keeps failing is skipped for a while, unless every upstream is.
 */
export class Forwarder {
  readonly #o: ForwarderOptions;
  /** Route ('' for the server's own sockets) → upstream key → health. */
  readonly #health = new Map<string, Map<string, Health>>();
  readonly #now: () => number;

  constructor(options: ForwarderOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The first answer that is neither SERVFAIL nor REFUSED; undefined when no upstream gave one.
   * The server then answers SERVFAIL itself, as libnetwork does (forwardExtDNS skips SERVFAIL
   * and REFUSED and relays neither), so an upstream's error never reaches the asker as its own.
   */
  async resolve(upstreams: readonly Upstream[], q: ForwardQuery): Promise<UpstreamMessage | undefined> {
    const query = buildQuery(q);
    const qEnd = questionEnd(query);
    const now = this.#now();
    const route = q.via?.route ?? '';
    const health = this.#health.get(route);
    const healthy = health ? upstreams.filter((u) => (health.get(u.key)?.until ?? 0) <= now) : upstreams;
    for (const u of healthy.length > 0 ? healthy : upstreams) {
      try {
        let reply = await this.#attempt(u, query, q, q.tcp);
        if (!q.tcp && reply[2]! & 0x02) reply = await this.#attempt(u, query, q, true);
        this.#ok(q, u);
        const rcode = reply[3]! & 0x0f;
        if (rcode === 2 || rcode === 5) continue;
        return parseUpstream(reply, qEnd);
      } catch (err) {
        if (isDnsError(err, 'DNS_UPSTREAM_TIMEOUT') || isDnsError(err, 'DNS_UPSTREAM_ERROR')) this.#fail(q, u);
      }
    }
    return undefined;
  }

  async #attempt(u: Upstream, query: Buffer, q: ForwardQuery, tcp: boolean): Promise<Buffer> {
    const start = this.#now();
    const stats = this.#o.stats && this.#upstreamStats(u.key);
    const t0 = stats ? performance.now() : 0;
    const publish = (outcome: string, extra: object) => {
      if (!forwardChannel.hasSubscribers) return;
      forwardChannel.publish({
        sandbox: q.sandbox,
        upstream: u.key,
        transport: tcp ? 'tcp' : 'udp',
        outcome,
        durationMs: this.#now() - start,
        ...extra,
      });
    };
    try {
      const reply = await this.#o.exchange(u, query, tcp, this.#o.timeout, q.via?.sockets);
      publish('answer', { rcode: reply[3]! & 0x0f });
      stats?.attempt(reply[3]! & 0x0f, (performance.now() - t0) / 1000);
      return reply;
    } catch (error) {
      const outcome = isDnsError(error, 'DNS_UPSTREAM_TIMEOUT') ? 'timeout' : 'error';
      publish(outcome, { error });
      stats?.attempt(outcome, (performance.now() - t0) / 1000);
      throw error;
    }
  }

  #upstreamStats(key: string): UpstreamStats {
    const all = this.#o.stats!;
    let s = all.get(key);
    if (!s) all.set(key, (s = new UpstreamStats()));
    s.requests++;
    return s;
  }

  /** Upstreams skipped now after failures, on the server's own sockets (route ''), or on a sandbox's. */
  skipped(route = ''): string[] {
    const now = this.#now();
    return [...(this.#health.get(route) ?? [])].filter(([, h]) => h.until > now).map(([key]) => key);
  }

  /** Forgets the health of a route (a removed sandbox's). */
  forget(route: string): void {
    this.#health.delete(route);
  }

  #ok(q: ForwardQuery, u: Upstream): void {
    const route = q.via?.route ?? '';
    const health = this.#health.get(route);
    const h = health?.get(u.key);
    if (!h) return;
    health!.delete(u.key);
    if (health!.size === 0) this.#health.delete(route);
    if (h.until > 0 && upstreamChannel.hasSubscribers) upstreamChannel.publish(event(q, u, 'up'));
  }

  #fail(q: ForwardQuery, u: Upstream): void {
    const route = q.via?.route ?? '';
    let health = this.#health.get(route);
    if (!health) this.#health.set(route, (health = new Map()));
    const h = health.get(u.key) ?? { failures: 0, until: 0 };
    h.failures++;
    if (h.failures >= this.#o.failuresToSkip) {
      h.until = this.#now() + this.#o.skipFor;
      h.failures = 0;
      if (upstreamChannel.hasSubscribers) upstreamChannel.publish({ ...event(q, u, 'down'), until: h.until });
    }
    health.set(u.key, h);
  }
}

/** A cnmd:dns:upstream event; an upstream reached through a sandbox's own sockets names the sandbox. */
function event(q: ForwardQuery, u: Upstream, state: 'up' | 'down'): object {
  return q.via ? { upstream: u.key, state, sandbox: q.sandbox } : { upstream: u.key, state };
}

/**
 * The query sent upstream: a fresh random ID (RFC 5452 section 4), the asker's RD and CD bits
 * and question, and, when the asker used EDNS, an OPT record with its payload size and DO bit
 * (its options, such as cookies, are hop-by-hop and stay behind; RFC 7873 section 5.1).
 */
export function buildQuery(q: ForwardQuery): Buffer {
  const out = Buffer.alloc(12 + q.question.length + (q.edns ? 11 : 0));
  out.writeUInt16BE(randomInt(0, 65536), 0);
  out.writeUInt16BE(q.flags & 0x0110, 2);
  out.writeUInt16BE(1, 4);
  q.question.copy(out, 12);
  if (q.edns) {
    const o = 12 + q.question.length;
    out.writeUInt16BE(1, 10);
    out.writeUInt16BE(41, o + 1);
    out.writeUInt16BE(q.edns.udpSize, o + 3);
    out.writeUInt16BE(q.edns.dnssecOk ? 0x8000 : 0, o + 7);
  }
  return out;
}
