import { DnsError } from './errors.js';
import type { NameTable } from './table/name-table.js';
import type { Exchange } from './upstream/exchange.js';

export interface DnsServerOptions {
  /** The names to answer; default a new, empty table (the server's `table`). */
  table?: NameTable;
  /** TTL of the table's answers, seconds (libnetwork: 600). */
  ttl: number;
  /**
   * Default upstreams for sandboxes that name none: `ip` or `ip:port`. Left undefined, start()
   * reads them from `resolvConf`, less the loopback ones.
   */
  upstreams?: string[];
  resolvConf: string;
  /** Per upstream attempt, ms (libnetwork: 4 s). */
  upstreamTimeout: number;
  /** Forwarded queries in flight per sandbox; past it REFUSED (libnetwork: 1024). */
  maxInflight: number;
  /** Forwarded answers kept; 0 turns the cache off. */
  cacheSize: number;
  /** Longest a forwarded answer is kept, seconds, whatever its TTL. */
  cacheMaxTtl: number;
  /** A TCP connection with no query for this long is closed, ms (RFC 7766 6.2.3). */
  tcpIdleTimeout: number;
  /** Open TCP connections per sandbox; more are closed at once. */
  maxTcpConnections: number;
  /** How queries reach upstreams; tests may replace it. Default: real sockets. */
  exchange?: Exchange;
  /**
   * Keeps counters for metrics (DnsServer.stats()): requests by type and rcode and their
   * duration, per set of networks; forwards per upstream. Off by default: then nothing is timed.
   */
  metrics: boolean;
}

export function defaultOptions(): DnsServerOptions {
  return {
    ttl: 600,
    resolvConf: '/etc/resolv.conf',
    upstreamTimeout: 4000,
    maxInflight: 1024,
    cacheSize: 10_000,
    cacheMaxTtl: 3600,
    tcpIdleTimeout: 10_000,
    maxTcpConnections: 256,
    metrics: false,
  };
}

function positive(o: DnsServerOptions, key: keyof DnsServerOptions, min: number, max: number): void {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new DnsError('DNS_INVALID_OPTION', `${key} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
}

export function checkOptions(o: DnsServerOptions): DnsServerOptions {
  positive(o, 'ttl', 0, 2 ** 31 - 1);
  positive(o, 'upstreamTimeout', 1, 60_000);
  positive(o, 'maxInflight', 1, 1_000_000);
  positive(o, 'cacheSize', 0, 10_000_000);
  positive(o, 'cacheMaxTtl', 0, 2 ** 31 - 1);
  positive(o, 'tcpIdleTimeout', 1, 3_600_000);
  positive(o, 'maxTcpConnections', 1, 65_535);
  if (typeof o.metrics !== 'boolean') throw new DnsError('DNS_INVALID_OPTION', 'metrics must be a boolean');
  if (o.upstreams !== undefined && !Array.isArray(o.upstreams)) {
    throw new DnsError('DNS_INVALID_OPTION', 'upstreams must be a list of addresses');
  }
  return o;
}
