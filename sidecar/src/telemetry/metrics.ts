// The daemon's metrics, through the OpenTelemetry SDK: a Prometheus reader that --metrics-addr
// serves (exporter-prometheus, its handler on our own listener), an OTLP push reader when the
// OTEL_* variables ask for one, and the DNS server's counters added at collection time
// (dns-metrics.ts). Names are Prometheus's, unit in the name: the SDK's Prometheus exporter keeps
// a name as given and adds `_total` to counters; OTLP receivers get the same names.
import { type Histogram as ApiHistogram, type Counter, type Meter, ValueType } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { Resource } from '@opentelemetry/resources';
import {
  type IMetricReader,
  MeterProvider,
  type MetricProducer,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';

/** Seconds: an attach or a detach takes milliseconds to a few seconds (a veth's deletion waits for RCU). */
export const CHANGE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds, as kube-proxy's sync_proxy_rules_duration_seconds: 0.1 ms (an IPVS edit) to 30 s (a full load). */
export const SYNC_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

export interface MetricsOptions {
  resource: Resource;
  /** Serve for Prometheus (--metrics-addr). */
  prometheus: boolean;
  /** Push over OTLP/HTTP, this often (ms), each push at most timeout ms. */
  otlp?: { interval: number; timeout: number };
  producers: MetricProducer[];
}

/** The instruments the rest of telemetry records into (the others are observed at collection). */
export interface Instruments {
  attachDuration: ApiHistogram;
  attachFailures: Counter;
  detachDuration: ApiHistogram;
  detachFailures: Counter;
  serviceChangeDuration: ApiHistogram;
  serviceChangeFailures: Counter;
  lbSyncDuration: ApiHistogram;
  lbChanges: Counter;
  lbSyncFailures: Counter;
  lbHealthChanges: Counter;
  firewallDuration: ApiHistogram;
  firewallFailures: Counter;
  ipamAllocated: Counter;
  ipamReleased: Counter;
  ipamExhausted: Counter;
  resyncDuration: ApiHistogram;
}

export class Metrics {
  readonly provider: MeterProvider;
  readonly meter: Meter;
  readonly prometheus: PrometheusExporter | undefined;
  readonly instruments: Instruments;

  constructor(o: MetricsOptions) {
    const readers: IMetricReader[] = [];
    if (o.prometheus) {
      this.prometheus = new PrometheusExporter({
        preventServerStart: true, // served on our listener, beside the status page
        withoutScopeInfo: true,
        withoutTargetInfo: true,
        metricProducers: o.producers,
      });
      readers.push(this.prometheus);
    }
    if (o.otlp) {
      readers.push(
        new PeriodicExportingMetricReader({
          exporter: new OTLPMetricExporter(),
          exportIntervalMillis: o.otlp.interval,
          exportTimeoutMillis: o.otlp.timeout,
          metricProducers: o.producers,
        }),
      );
    }
    this.provider = new MeterProvider({ resource: o.resource, readers });
    this.meter = this.provider.getMeter('@cnmd/sidecar');
    const m = this.meter;
    const seconds = (name: string, description: string, buckets: number[]) =>
      m.createHistogram(name, { description, unit: 's', advice: { explicitBucketBoundaries: buckets } });
    const count = (name: string, description: string) =>
      m.createCounter(name, { description, valueType: ValueType.INT });
    this.instruments = {
      attachDuration: seconds(
        'cnmd_sidecar_attach_duration_seconds',
        'Time to attach a sandbox to a network',
        CHANGE_BUCKETS,
      ),
      attachFailures: count('cnmd_sidecar_attach_failures', 'Attaches that failed, by error code'),
      detachDuration: seconds('cnmd_sidecar_detach_duration_seconds', 'Time to detach an endpoint', CHANGE_BUCKETS),
      detachFailures: count('cnmd_sidecar_detach_failures', 'Detaches that failed, by error code'),
      serviceChangeDuration: seconds(
        'cnmd_sidecar_service_change_duration_seconds',
        'Time to create or remove a service',
        CHANGE_BUCKETS,
      ),
      serviceChangeFailures: count(
        'cnmd_sidecar_service_change_failures',
        'Service changes that failed, by op and code',
      ),
      lbSyncDuration: seconds(
        'cnmd_lb_sync_duration_seconds',
        'Time a data plane took to apply one load-balancer change',
        SYNC_BUCKETS,
      ),
      lbChanges: count('cnmd_lb_changes', 'Virtual services added, changed and removed in a data plane'),
      lbSyncFailures: count('cnmd_lb_sync_failures', 'Load-balancer changes a data plane refused, by code'),
      lbHealthChanges: count('cnmd_lb_health_changes', 'Backends that became healthy or unhealthy'),
      firewallDuration: seconds(
        'cnmd_sidecar_firewall_transaction_duration_seconds',
        'Time of one nftables transaction of the host firewall',
        SYNC_BUCKETS,
      ),
      firewallFailures: count('cnmd_sidecar_firewall_failures', 'nftables transactions refused, by op and code'),
      ipamAllocated: count('cnmd_ipam_addresses_allocated', 'Addresses handed out'),
      ipamReleased: count('cnmd_ipam_addresses_released', 'Addresses returned'),
      ipamExhausted: count('cnmd_ipam_pool_exhausted', 'Address requests refused: the pool was full'),
      resyncDuration: seconds(
        'cnmd_sidecar_cluster_resync_duration_seconds',
        "Time to bring this host's view in step with the cluster",
        [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      ),
    };
  }

  async close(): Promise<void> {
    await this.provider.shutdown().catch(() => {});
  }
}
