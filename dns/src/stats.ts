// The server's own counters, for metrics (CoreDNS's dns_requests_total, request_duration_seconds,
// cache and forward metrics). On the hot path they are plain numbers in typed arrays, bumped in
// place; nobody is called per query. A reader (the sidecar's telemetry) takes a snapshot when it
// collects (DnsServer.stats()). Counting is off unless DnsServerOptions.metrics turns it on.
//
// Durations are timed per batch, not per query: a clock read costs 130 ns on the development VM
// (kvm-clock), a table answer 3 µs, so two reads per query would cost 8% of the throughput. The
// queries a transport hands over in one go (one recvmmsg, one datagram, one TCP read) arrived
// together and their replies leave together, when the batch ends; each is recorded with the
// batch's time (server.ts). A forwarded query is timed on its own from its batch's start.

/**
 * Upper bounds of the request duration buckets, seconds: 25 µs to 10 s in steps of 1, 2.5, 5 (as
 * `le` labels read). A table answer takes tens of µs here; a forwarded one up to the upstream
 * timeout (4 s) per upstream tried.
 */
export const DURATION_BUCKETS: readonly number[] = [
  0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** The types a request is counted under (CoreDNS names the common ones, the rest `other`). */
export const TYPE_NAMES = ['A', 'NS', 'CNAME', 'SOA', 'PTR', 'MX', 'TXT', 'AAAA', 'SRV', 'HTTPS', 'ANY', 'other'];
const TYPE_CODES = [1, 2, 5, 6, 12, 15, 16, 28, 33, 65, 255];
const OTHER_TYPE = TYPE_NAMES.length - 1;
/** Type code (< 256) → slot in TYPE_NAMES. */
const TYPE_SLOT = new Uint8Array(256).fill(OTHER_TYPE);
TYPE_CODES.forEach((code, i) => {
  TYPE_SLOT[code] = i;
});

/** RFC 1035 4.1.1, RFC 2136, RFC 6891 (BADVERS, 16, in the OPT record); anything else `other`. */
export const RCODE_NAMES = [
  'NOERROR',
  'FORMERR',
  'SERVFAIL',
  'NXDOMAIN',
  'NOTIMP',
  'REFUSED',
  'YXDOMAIN',
  'YXRRSET',
  'NXRRSET',
  'NOTAUTH',
  'NOTZONE',
  'RCODE11',
  'RCODE12',
  'RCODE13',
  'RCODE14',
  'RCODE15',
  'BADVERS',
  'other',
];
const RCODES = RCODE_NAMES.length;
const OTHER_RCODE = RCODES - 1;

/** A histogram over DURATION_BUCKETS: counts per bucket (the last one past every bound), not cumulative. */
export class DurationHistogram {
  readonly counts = new Float64Array(DURATION_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  /** Records a duration in seconds, n times. */
  record(s: number, n = 1): void {
    let i = 0;
    // Prometheus buckets are `le`: a duration on a bound belongs to it.
    while (i < DURATION_BUCKETS.length && s > DURATION_BUCKETS[i]!) i++;
    this.counts[i]! += n;
    this.sum += s * n;
    this.count += n;
  }
}

/** What the server answered to the sandboxes of one set of networks (one View). */
export class RequestStats {
  /** Requests by type slot × RCODES + rcode slot. */
  readonly requests = new Float64Array(TYPE_NAMES.length * RCODES);
  readonly duration = new DurationHistogram();
  /** Date.now() when counting began: a new set of networks starts from zero. */
  readonly since = Date.now();

  /** One request answered with rcode (its duration is recorded apart, per batch). */
  count(type: number, rcode: number): void {
    const t = type < 256 ? TYPE_SLOT[type]! : OTHER_TYPE;
    const r = rcode >= 0 && rcode < OTHER_RCODE ? rcode : OTHER_RCODE;
    this.requests[t * RCODES + r]! += 1;
  }
}

/** Forwarded queries to one upstream (server's own sockets or a sandbox's). */
export class UpstreamStats {
  /** Attempts sent. */
  requests = 0;
  /** Answers by rcode slot. */
  readonly responses = new Float64Array(RCODES);
  timeouts = 0;
  errors = 0;
  /** Duration of attempts by outcome: an rcode name, `timeout` or `error`. */
  readonly durations = new Map<string, DurationHistogram>();

  /** One attempt ended: rcode of its answer, or 'timeout' / 'error'. */
  attempt(outcome: number | 'timeout' | 'error', seconds: number): void {
    let label: string;
    if (typeof outcome === 'number') {
      const r = outcome >= 0 && outcome < OTHER_RCODE ? outcome : OTHER_RCODE;
      this.responses[r]! += 1;
      label = RCODE_NAMES[r]!;
    } else {
      if (outcome === 'timeout') this.timeouts++;
      else this.errors++;
      label = outcome;
    }
    let h = this.durations.get(label);
    if (!h) this.durations.set(label, (h = new DurationHistogram()));
    h.record(seconds);
  }
}

export interface HistogramSnapshot {
  /** Upper bounds, seconds (DURATION_BUCKETS). */
  bounds: readonly number[];
  /** Per bucket, the last one past every bound; not cumulative. */
  counts: number[];
  sum: number;
  count: number;
}

/** What DnsServer.stats() returns: every counter as it is now (monotonic while the server lives). */
export interface DnsStatsSnapshot {
  /** Per set of networks a sandbox is on (its `networks`, comma-joined, in the sidecar's order). */
  views: {
    networks: string;
    since: number;
    requests: { type: string; rcode: string; count: number }[];
    duration: HistogramSnapshot;
  }[];
  cache: { hits: number; misses: number; entries: number };
  /** Per upstream, by its `ip:port`: attempts, answers by rcode, failures, durations by outcome. */
  forwards: {
    upstream: string;
    requests: number;
    responses: { rcode: string; count: number }[];
    timeouts: number;
    errors: number;
    durations: { outcome: string; histogram: HistogramSnapshot }[];
  }[];
  /** The server's default upstreams and any forwarded to: false while skipped after failures. */
  upstreams: { upstream: string; up: boolean }[];
  /** Packets dropped or answered FORMERR as malformed; internal errors (a bug, answered SERVFAIL or dropped). */
  malformed: number;
  internalErrors: number;
  /** Date.now() when the server began counting. */
  since: number;
}

export function snapshotHistogram(h: DurationHistogram): HistogramSnapshot {
  return { bounds: DURATION_BUCKETS, counts: [...h.counts], sum: h.sum, count: h.count };
}

export function snapshotRequests(s: RequestStats): { type: string; rcode: string; count: number }[] {
  const out: { type: string; rcode: string; count: number }[] = [];
  s.requests.forEach((count, i) => {
    if (count > 0) out.push({ type: TYPE_NAMES[Math.floor(i / RCODES)]!, rcode: RCODE_NAMES[i % RCODES]!, count });
  });
  return out;
}

export function snapshotUpstream(upstream: string, u: UpstreamStats): DnsStatsSnapshot['forwards'][number] {
  const responses: { rcode: string; count: number }[] = [];
  u.responses.forEach((count, i) => {
    if (count > 0) responses.push({ rcode: RCODE_NAMES[i]!, count });
  });
  return {
    upstream,
    requests: u.requests,
    responses,
    timeouts: u.timeouts,
    errors: u.errors,
    durations: [...u.durations].map(([outcome, h]) => ({ outcome, histogram: snapshotHistogram(h) })),
  };
}
