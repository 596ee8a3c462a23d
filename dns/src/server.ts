import net from 'node:net';
import { AnswerCache } from './answer-cache.js';
import { compose, type Handler, type Reply, type Request } from './chain.js';
import { errorChannel, type QueryEvent, queryChannel } from './diagnostics.js';
import { fromWireKey } from './dns-name.js';
import { DnsError } from './errors.js';
import type { ServerContext } from './handlers/context.js';
import { CHAIN, TABLE_PART } from './handlers/index.js';
import { checkOptions, type DnsServerOptions, defaultOptions } from './options.js';
import { assemble } from './prepared.js';
import { DROP, type RawQuery, readQuery } from './raw-query.js';
import { emptyReply, relayReply } from './respond.js';
import { checkConfig, Sandbox, type SandboxConfig, type SandboxSpec } from './sandbox.js';
import {
  type DnsStatsSnapshot,
  type RequestStats,
  snapshotHistogram,
  snapshotRequests,
  snapshotUpstream,
  type UpstreamStats,
} from './stats.js';
import { NameTable } from './table/name-table.js';
import { TcpListener } from './tcp.js';
import type { Peer } from './transport.js';
import { socketExchange } from './upstream/exchange.js';
import { Forwarder } from './upstream/forwarder.js';
import { readResolvConf } from './upstream/resolv-conf.js';
import { parseUpstream, type Upstream } from './upstream/upstream-address.js';
import { View } from './view.js';
import { RCODE } from './wire.js';

const NOT_HELD: Handler = () => ({ source: 'server', rcode: -1 });
const SERVFAIL: Handler = () => ({ source: 'server', rcode: RCODE.SERVFAIL });
/** RFC 1035 4.2.2 / RFC 7766: a TCP message may be as large as its length prefix allows. */
const TCP_LIMIT = 65_535;

/**
 * Docker's embedded DNS server for any number of sandboxes: it answers from the name table
 * what each sandbox may see and forwards the rest. It opens no socket toward the sandboxes:
 * the sidecar hands it transports already bound inside them (addSandbox).
 */
export class DnsServer {
  readonly table: NameTable;
  readonly #o: DnsServerOptions;
  readonly #sandboxes = new Map<string, Sandbox>();
  readonly #specs = new Map<Sandbox, SandboxSpec>();
  readonly #views = new Map<string, View>();
  readonly #local: Handler;
  readonly #upstream: Handler;
  readonly #unsubscribe: () => void;
  readonly #forwarder: Forwarder;
  readonly #cache: AnswerCache | undefined;
  /** DnsServerOptions.metrics: requests are counted and timed. */
  readonly #metrics: boolean;
  readonly #upstreamStats = new Map<string, UpstreamStats>();
  #malformed = 0;
  #internalErrors = 0;
  readonly #since = Date.now();
  /** performance.now() when the current batch began; -1 outside one (metrics only). */
  #t0 = -1;
  /** The views answered in the current batch, synchronously, and how many queries each. */
  readonly #batchViews: RequestStats[] = [];
  readonly #batchCounts: number[] = [];
  #defaults: Upstream[] = [];
  /** Counts sandboxes added, for their tokens. */
  #added = 0;
  #started = false;
  #closed = false;

  constructor(options: Partial<DnsServerOptions> = {}) {
    this.#o = checkOptions({ ...defaultOptions(), ...options });
    this.table = this.#o.table ?? new NameTable();
    if (this.#o.upstreams) this.#defaults = this.#o.upstreams.map(parseUpstream);
    this.#metrics = this.#o.metrics;
    this.#forwarder = new Forwarder({
      exchange: this.#o.exchange ?? socketExchange,
      timeout: this.#o.upstreamTimeout,
      failuresToSkip: 3,
      skipFor: 30_000,
      ...(this.#metrics ? { stats: this.#upstreamStats } : {}),
    });
    this.#cache = this.#o.cacheSize > 0 ? new AnswerCache(this.#o.cacheSize, this.#o.cacheMaxTtl) : undefined;
    const ctx: ServerContext = {
      ttl: this.#o.ttl,
      cache: this.#cache,
      forwarder: this.#forwarder,
      maxInflight: this.#o.maxInflight,
    };
    const plugins = CHAIN.map((f) => f(ctx));
    this.#local = compose(plugins.slice(0, TABLE_PART), NOT_HELD);
    this.#upstream = compose(plugins.slice(TABLE_PART), SERVFAIL);
    this.#unsubscribe = this.table.onChange((changed) => {
      for (const v of this.#views.values()) v.refresh(changed);
    });
  }

  /** Loads the default upstreams (unless given) and starts serving the sandboxes added so far. */
  async start(): Promise<void> {
    if (this.#closed) throw new DnsError('DNS_CLOSED', 'the server is closed');
    if (this.#started) return;
    if (!this.#o.upstreams) this.#defaults = (await readResolvConf(this.#o.resolvConf)).map(parseUpstream);
    this.#started = true;
    for (const sb of this.#sandboxes.values()) this.#attach(sb);
  }

  /** Serves a sandbox on the transports given; they belong to the server from now on. */
  addSandbox(id: string, spec: SandboxSpec): void {
    if (this.#closed) throw new DnsError('DNS_CLOSED', 'the server is closed');
    if (this.#sandboxes.has(id)) throw new DnsError('DNS_SANDBOX_EXISTS', `sandbox ${id} is already served`);
    const configure = checkConfig(spec);
    const sb = new Sandbox(id, `${id}#${++this.#added}`, this.#view(spec.networks), () => this.#defaults);
    configure(sb);
    this.#sandboxes.set(id, sb);
    this.#specs.set(sb, spec);
    if (this.#started) this.#attach(sb);
  }

  /** Stops serving a sandbox and closes its transports; false if it was not served. */
  async removeSandbox(id: string): Promise<boolean> {
    const sb = this.#sandboxes.get(id);
    if (!sb) return false;
    this.#sandboxes.delete(id);
    this.#specs.delete(sb);
    this.#release(sb.view);
    this.#forwarder.forget(sb.token);
    await Promise.all([sb.udp?.close(), sb.tcp?.close()]);
    return true;
  }

  /** The sandbox joined or left networks: from now on it sees only these. */
  setNetworks(id: string, networks: string[]): void {
    const sb = this.#get(id);
    const old = sb.view;
    sb.view = this.#view(networks);
    this.#release(old);
  }

  /**
   * Changes how a sandbox's names outside the table are served: the keys given (undefined: back
   * to the default), the others as they were. A bad config throws and changes nothing.
   */
  configureSandbox(id: string, config: SandboxConfig): void {
    const sb = this.#get(id);
    checkConfig(config)(sb);
  }

  /** Ids of the sandboxes served. */
  sandboxes(): string[] {
    return [...this.#sandboxes.keys()];
  }

  /**
   * Every counter as it is now, for metrics read at collection time (a snapshot costs a pass over
   * the views, never anything per query). Empty views and forwards unless `metrics` is on.
   */
  stats(): DnsStatsSnapshot {
    const skipped = new Set(this.#forwarder.skipped());
    const upstreams = new Set([...this.#defaults.map((u) => u.key), ...this.#upstreamStats.keys()]);
    return {
      views: this.#metrics
        ? [...this.#views.values()].map((v) => ({
            networks: v.networks.join(','),
            since: v.stats.since,
            requests: snapshotRequests(v.stats),
            duration: snapshotHistogram(v.stats.duration),
          }))
        : [],
      cache: { hits: this.#cache?.hits ?? 0, misses: this.#cache?.misses ?? 0, entries: this.#cache?.size ?? 0 },
      forwards: [...this.#upstreamStats].map(([upstream, u]) => snapshotUpstream(upstream, u)),
      upstreams: [...upstreams].map((upstream) => ({ upstream, up: !skipped.has(upstream) })),
      malformed: this.#malformed,
      internalErrors: this.#internalErrors,
      since: this.#since,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    await Promise.all([...this.#sandboxes.keys()].map((id) => this.removeSandbox(id)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #get(id: string): Sandbox {
    const sb = this.#sandboxes.get(id);
    if (!sb) throw new DnsError('DNS_SANDBOX_NOT_FOUND', `sandbox ${id} is not served`);
    return sb;
  }

  /** Sandboxes on the same networks share one view, and so one set of prepared answers. */
  #view(networks: unknown): View {
    if (!Array.isArray(networks) || !networks.every((n) => typeof n === 'string' && n.length > 0)) {
      throw new DnsError('DNS_INVALID_OPTION', 'networks must be a list of network names');
    }
    const nets = [...new Set(networks as string[])];
    const key = nets.join('\0');
    let v = this.#views.get(key);
    if (!v) this.#views.set(key, (v = new View(nets, this.table, this.#local)));
    v.refs++;
    return v;
  }

  #release(v: View): void {
    if (--v.refs === 0) this.#views.delete(v.networks.join('\0'));
  }

  #attach(sb: Sandbox): void {
    const spec = this.#specs.get(sb)!;
    const batchEnd = this.#metrics ? this.#batchEnd : undefined;
    if (spec.udp) {
      sb.udp = spec.udp;
      sb.batches = spec.udp.batches === true;
      spec.udp.listen((packet, peer) => this.#onUdp(sb, packet, peer), batchEnd);
    }
    if (spec.tcp) {
      let server: net.Server;
      if (spec.tcp instanceof net.Server) server = spec.tcp;
      else {
        server = net.createServer();
        server.listen({ fd: spec.tcp.fd });
      }
      sb.tcp = new TcpListener(server, (packet) => this.#safely(sb, packet, true, false), {
        idleTimeout: this.#o.tcpIdleTimeout,
        maxConnections: this.#o.maxTcpConnections,
        batchEnd,
      });
    }
  }

  #onUdp(sb: Sandbox, packet: Buffer, peer: Peer): Buffer | undefined {
    const r = this.#safely(sb, packet, false, !sb.batches);
    if (!(r instanceof Promise)) return r;
    void r.then((reply) => {
      if (reply && this.#sandboxes.get(sb.id) === sb) sb.udp?.send(reply, peer);
    });
    return undefined;
  }

  /**
   * Never throws, and the promise never rejects: a bad packet must not reach the event loop.
   * auto: the transport does not say when its delivery ends (a microtask does, for metrics).
   */
  #safely(sb: Sandbox, packet: Buffer, tcp: boolean, auto: boolean): Buffer | Promise<Buffer | undefined> | undefined {
    const t0 = this.#metrics ? this.#batchStart(auto) : 0;
    try {
      return this.#answer(sb, packet, tcp, t0);
    } catch (error) {
      this.#internalErrors++;
      if (errorChannel.hasSubscribers) errorChannel.publish({ sandbox: sb.id, reason: 'internal', error });
      return undefined;
    }
  }

  #answer(sb: Sandbox, packet: Buffer, tcp: boolean, t0: number): Buffer | Promise<Buffer | undefined> | undefined {
    const q = readQuery(packet);
    if (typeof q === 'number') {
      this.#malformed++;
      if (errorChannel.hasSubscribers) errorChannel.publish({ sandbox: sb.id, reason: 'malformed', rcode: q });
      return q === DROP ? undefined : emptyReply(packet, undefined, q);
    }
    // RFC 1035 4.2.1: a UDP message is 512 bytes at most unless EDNS announces more. Docker's
    // server reads 512 bytes (miekg/dns MinMsgSize), so a longer query fails to unpack: FORMERR.
    if (!tcp && packet.length > 512 && !q.edns) q.error = RCODE.FORMERR;
    if (q.error) {
      // BADVERS is a version we do not speak, not a malformed packet.
      if (q.error === RCODE.FORMERR) {
        this.#malformed++;
        if (errorChannel.hasSubscribers) errorChannel.publish({ sandbox: sb.id, reason: 'malformed', rcode: q.error });
      }
      if (this.#metrics) this.#answered(sb.view.stats, q.type, q.error);
      return emptyReply(packet, q, q.error);
    }
    const limit = tcp ? TCP_LIMIT : q.udpSize;
    // The fast path: a prepared table answer, copied behind the query's own header and question.
    // In any class: Docker never looks at it (libnetwork serveDNS switches on the type alone), so
    // `A web` in CH, ANY, NONE or 0 answers the table's IN records, the question echoed as asked.
    const view = sb.view;
    const p = view.lookup(q.key, q.type) ?? view.prepare(q.key, q.type);
    if (p) {
      if (queryChannel.hasSubscribers) publish(sb, q, p.rcode, 'table', tcp);
      if (this.#metrics) this.#answered(view.stats, q.type, p.rcode);
      return assemble(p, packet, q, limit);
    }
    // Names the table does not hold: the rest of the chain, which forwards them in the class asked
    // (as Docker does) and caches them under it. The packet may be a view of a receive buffer
    // that the transport reuses, so what outlives this call is copied.
    const head = Buffer.from(packet.subarray(0, q.qEnd));
    const req: Request = {
      lname: fromWireKey(q.key) ?? q.key,
      key: q.key,
      type: q.type,
      class: q.class,
      sandbox: sb,
      table: this.table,
      candidates: [],
      question: head.subarray(12),
      tcp,
      flags: q.flags,
      edns: q.edns ? { udpSize: q.udpSize, dnssecOk: q.dnssecOk } : undefined,
    };
    const r = this.#upstream(req);
    if (!(r instanceof Promise)) return this.#reply(sb, r, head, q, limit, tcp, -1);
    return r.then(
      (reply) => this.#reply(sb, reply, head, q, limit, tcp, t0),
      (error) => {
        this.#internalErrors++;
        if (errorChannel.hasSubscribers) errorChannel.publish({ sandbox: sb.id, reason: 'internal', error });
        if (this.#metrics) this.#late(sb.view.stats, q.type, RCODE.SERVFAIL, t0);
        return emptyReply(head, q, RCODE.SERVFAIL);
      },
    );
  }

  /** t0: when the query's batch began; -1 when the answer came synchronously, within it. */
  #reply(sb: Sandbox, r: Reply, head: Buffer, q: RawQuery, limit: number, tcp: boolean, t0: number): Buffer {
    if (queryChannel.hasSubscribers) publish(sb, q, r.rcode, r.source, tcp);
    if (this.#metrics) {
      if (t0 < 0) this.#answered(sb.view.stats, q.type, r.rcode);
      else this.#late(sb.view.stats, q.type, r.rcode, t0);
    }
    if (r.message) return relayReply(r.message, r.age ?? 0, head, q, limit);
    return emptyReply(head, q, r.rcode);
  }

  // ---- metrics: the queries of a batch share its two clock reads (stats.ts) ----

  /** When the current batch began: the first query of a batch reads the clock. The batch ends
   * when its transport says so, or with the microtasks after the transport's delivery. */
  #batchStart(auto: boolean): number {
    if (this.#t0 < 0) {
      this.#t0 = performance.now();
      if (auto) queueMicrotask(this.#batchEnd);
    }
    return this.#t0;
  }

  /** A query of the current batch answered synchronously: its reply leaves with the batch. */
  #answered(stats: RequestStats, type: number, rcode: number): void {
    stats.count(type, rcode);
    const last = this.#batchViews.length - 1;
    if (last >= 0 && this.#batchViews[last] === stats) this.#batchCounts[last]! += 1;
    else {
      this.#batchViews.push(stats);
      this.#batchCounts.push(1);
    }
  }

  /** A query answered after its batch (forwarded): timed on its own. */
  #late(stats: RequestStats, type: number, rcode: number, t0: number): void {
    stats.count(type, rcode);
    stats.duration.record((performance.now() - t0) / 1000);
  }

  readonly #batchEnd = (): void => {
    if (this.#t0 < 0) return; // a delivery with nothing counted (a dropped packet)
    const s = (performance.now() - this.#t0) / 1000;
    this.#t0 = -1;
    for (let i = 0; i < this.#batchViews.length; i++) this.#batchViews[i]!.duration.record(s, this.#batchCounts[i]);
    this.#batchViews.length = 0;
    this.#batchCounts.length = 0;
  };
}

function publish(sb: Sandbox, q: RawQuery, rcode: number, source: Reply['source'], tcp: boolean): void {
  const event: QueryEvent = {
    sandbox: sb.id,
    name: fromWireKey(q.key) ?? q.key,
    type: q.type,
    rcode,
    source,
    transport: tcp ? 'tcp' : 'udp',
  };
  queryChannel.publish(event);
}
