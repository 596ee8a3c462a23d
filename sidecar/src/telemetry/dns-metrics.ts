// The DNS server's counters as OpenTelemetry metric data, made when a reader collects (a scrape,
// an OTLP push): a MetricProducer, the SDK's way to add data it did not aggregate itself. The
// server keeps plain numbers per set of networks and per upstream (@cnmd/dns stats.ts); nothing
// here runs per query. Names and labels follow CoreDNS (coredns_dns_requests_total, …).

import type { DnsServer, DnsStatsSnapshot, HistogramSnapshot } from '@cnmd/dns';
import { type Attributes, type HrTime, ValueType } from '@opentelemetry/api';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  type CollectionResult,
  type DataPoint,
  DataPointType,
  type Histogram,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';

const hr = (ms: number): HrTime => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)];

function descriptor(name: string, description: string, unit = '') {
  return { name, description, unit, valueType: ValueType.DOUBLE };
}

function counter(name: string, description: string, points: DataPoint<number>[]): MetricData {
  return {
    descriptor: descriptor(name, description),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.SUM,
    isMonotonic: true,
    dataPoints: points,
  };
}

function gauge(name: string, description: string, points: DataPoint<number>[]): MetricData {
  return {
    descriptor: descriptor(name, description),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.GAUGE,
    dataPoints: points,
  };
}

function histogram(name: string, description: string, points: DataPoint<Histogram>[]): MetricData {
  return {
    descriptor: descriptor(name, description, 's'),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.HISTOGRAM,
    dataPoints: points,
  };
}

function toHistogram(h: HistogramSnapshot): Histogram {
  return { buckets: { boundaries: [...h.bounds], counts: h.counts }, sum: h.sum, count: h.count };
}

/** The metric data of one snapshot; series with nothing counted yet are left out. */
export function dnsMetricData(s: DnsStatsSnapshot, nowMs = Date.now()): MetricData[] {
  const end = hr(nowMs);
  const point = <T>(value: T, attributes: Attributes, since = s.since): DataPoint<T> => ({
    startTime: hr(since),
    endTime: end,
    attributes,
    value,
  });
  const requests: DataPoint<number>[] = [];
  const durations: DataPoint<Histogram>[] = [];
  for (const v of s.views) {
    for (const r of v.requests)
      requests.push(point(r.count, { network: v.networks, type: r.type, rcode: r.rcode }, v.since));
    if (v.duration.count > 0) durations.push(point(toHistogram(v.duration), { network: v.networks }, v.since));
  }
  const fwdRequests: DataPoint<number>[] = [];
  const fwdResponses: DataPoint<number>[] = [];
  const fwdFailures: DataPoint<number>[] = [];
  const fwdDurations: DataPoint<Histogram>[] = [];
  for (const f of s.forwards) {
    fwdRequests.push(point(f.requests, { upstream: f.upstream }));
    for (const r of f.responses) fwdResponses.push(point(r.count, { upstream: f.upstream, rcode: r.rcode }));
    if (f.timeouts > 0) fwdFailures.push(point(f.timeouts, { upstream: f.upstream, reason: 'timeout' }));
    if (f.errors > 0) fwdFailures.push(point(f.errors, { upstream: f.upstream, reason: 'error' }));
    for (const d of f.durations) {
      fwdDurations.push(point(toHistogram(d.histogram), { upstream: f.upstream, rcode: d.outcome }));
    }
  }
  return [
    counter(
      'cnmd_dns_requests',
      'DNS requests answered, by the networks of the asking sandbox, type and rcode',
      requests,
    ),
    histogram('cnmd_dns_request_duration_seconds', 'Time to answer a DNS request', durations),
    counter('cnmd_dns_cache_hits', 'Forwarded names answered from the cache', [point(s.cache.hits, {})]),
    counter('cnmd_dns_cache_misses', 'Forwarded names not in the cache', [point(s.cache.misses, {})]),
    gauge('cnmd_dns_cache_entries', 'Answers held in the cache', [point(s.cache.entries, {})]),
    counter('cnmd_dns_forward_requests', 'Queries sent to an upstream (each attempt)', fwdRequests),
    counter('cnmd_dns_forward_responses', 'Answers from an upstream, by rcode', fwdResponses),
    counter('cnmd_dns_forward_failures', 'Upstream attempts that timed out or failed', fwdFailures),
    histogram(
      'cnmd_dns_forward_request_duration_seconds',
      'Time an upstream took, by its rcode (or timeout, error)',
      fwdDurations,
    ),
    gauge(
      'cnmd_dns_upstream_up',
      'Whether an upstream is used (0 while it is skipped after failures)',
      s.upstreams.map((u) => point(u.up ? 1 : 0, { upstream: u.upstream })),
    ),
    counter('cnmd_dns_malformed_requests', 'Packets dropped or answered FORMERR as malformed', [
      point(s.malformed, {}),
    ]),
    counter('cnmd_dns_internal_errors', 'Queries the server failed on (answered SERVFAIL or dropped)', [
      point(s.internalErrors, {}),
    ]),
  ];
}

/** A MetricProducer over a DNS server's counters. */
export function dnsProducer(server: () => DnsServer | undefined): MetricProducer {
  return {
    async collect(): Promise<CollectionResult> {
      const dns = server();
      return {
        resourceMetrics: {
          resource: emptyResource(), // readers use the SDK's resource
          scopeMetrics: dns ? [{ scope: { name: '@cnmd/dns' }, metrics: dnsMetricData(dns.stats()) }] : [],
        },
        errors: [],
      };
    },
  };
}
