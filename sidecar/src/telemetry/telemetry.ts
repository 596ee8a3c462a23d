// The daemon's telemetry, in one place: the log, metrics (served on --metrics-addr, pushed over
// OTLP when the OTEL_* variables say so), traces (when they say so), and the status page. The
// daemon asks it to wrap its parts before wiring them (wrap*) and to serve once they run. With no
// --metrics-addr and no OTEL_* variables nothing listens, nothing is wrapped, nothing is timed.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { hostname } from 'node:os';
import { type DnsServer, upstreamChannel } from '@cnmd/dns';
import type { Ipam } from '@cnmd/ipam';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import type { Cluster } from '../cluster/cluster.js';
import type { Kernel } from '../kernel/types.js';
import type { NetworkController } from '../network/controller.js';
import type { DnsHooks, FirewallHooks, LbHooks } from '../network/hooks.js';
import { dnsProducer } from './dns-metrics.js';
import {
  type ClusterWatch,
  instrumentCluster,
  instrumentController,
  type Observer,
  traced,
  tracedKernel,
  traceIpam,
} from './instrument.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { countEvents, observeState } from './observe.js';
import { otelEnv } from './otel-env.js';
import { MetricsServer } from './server.js';
import { statusDoc } from './status.js';
import { Tracing } from './tracing.js';

export interface TelemetryOptions {
  /** Where /metrics and the status page are served; nothing listens without it. */
  metricsAddr?: { host: string; port: number } | undefined;
  /** The OTEL_* variables (the process's environment). */
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** This host's name in the cluster, else the hostname. */
  hostId?: string | undefined;
}

/** What the telemetry reads once the daemon runs. */
export interface TelemetrySources {
  controller: NetworkController;
  ipam: Ipam;
  dns: DnsServer;
  cluster?: Cluster | undefined;
  /** Network name → the data plane balancing its VIPs. */
  dataplanes: () => Record<string, string>;
}

export class Telemetry {
  readonly #o: TelemetryOptions;
  readonly #metrics: Metrics | undefined;
  readonly #tracing: Tracing | undefined;
  readonly #observer: Observer;
  readonly #host: string;
  #sources: TelemetrySources | undefined;
  #watch: ClusterWatch | undefined;
  #server: MetricsServer | undefined;
  #stopEvents: (() => void) | undefined;
  #closed = false;
  /** An upstream skipped after failures, or back: rare, and worth a line whatever is observed. */
  readonly #onUpstream = (m: unknown): void => {
    const e = m as { upstream: string; state: 'down' | 'up'; until?: number; sandbox?: string };
    const via = e.sandbox ? ` (from sandbox ${e.sandbox})` : '';
    if (e.state === 'down') {
      const until = e.until ? ` until ${new Date(e.until).toISOString()}` : '';
      this.#o.log.warn(`dns: upstream ${e.upstream}${via} failed 3 times in a row: skipped${until}`, {
        upstream: e.upstream,
        sandbox: e.sandbox,
      });
    } else
      this.#o.log.info(`dns: upstream ${e.upstream}${via} answers again`, { upstream: e.upstream, sandbox: e.sandbox });
  };

  constructor(o: TelemetryOptions) {
    this.#o = o;
    this.#host = o.hostId ?? hostname().split('.')[0] ?? 'localhost';
    subscribe(upstreamChannel.name, this.#onUpstream);
    const env = otelEnv(o.env);
    for (const p of env.problems) o.log.warn(`telemetry: ${p}`);
    const wanted = o.metricsAddr !== undefined || env.metrics || env.traces;
    const resource = wanted
      ? defaultResource()
          .merge(detectResources({ detectors: [envDetector] }))
          .merge(resourceFromAttributes({ 'service.name': env.serviceName, 'host.name': this.#host }))
      : undefined;
    if (resource && (o.metricsAddr || env.metrics)) {
      this.#metrics = new Metrics({
        resource,
        prometheus: o.metricsAddr !== undefined,
        ...(env.metrics ? { otlp: { interval: env.metricInterval, timeout: env.metricTimeout } } : {}),
        producers: [dnsProducer(() => this.#sources?.dns)],
      });
      this.#stopEvents = countEvents(this.#metrics.instruments);
      observeState(this.#metrics.meter, () => (this.#sources ? { ...this.#sources, watch: this.#watch } : undefined));
    }
    if (resource && env.traces) this.#tracing = new Tracing(resource);
    this.#observer = { tracer: this.#tracing?.tracer, instruments: this.#metrics?.instruments, log: o.log };
    const what = [
      o.metricsAddr && `metrics on ${o.metricsAddr.host}:${o.metricsAddr.port}`,
      env.metrics && 'metrics over OTLP',
      env.traces && 'traces over OTLP',
    ].filter(Boolean);
    if (what.length > 0) o.log.info(`telemetry: ${what.join(', ')}`);
  }

  /** Whether the DNS server should keep its counters. */
  get metrics(): boolean {
    return this.#metrics !== undefined;
  }

  /** Whether operations are observed at all (metrics or traces). */
  get on(): boolean {
    return this.#metrics !== undefined || this.#tracing !== undefined;
  }

  // ---- the parts, wrapped before they are wired (identity when off) ----

  wrapKernel(kernel: Kernel): Kernel {
    return tracedKernel(this.#observer, kernel);
  }

  wrapFirewall(firewall: FirewallHooks): FirewallHooks {
    const f = ['addNetwork', 'removeNetwork', 'publish', 'unpublish', 'reconcile', 'checkPorts'];
    return traced(this.#observer, firewall, 'firewall', f, (_, args) => ({ network: netOf(args[0]) }));
  }

  /** DNS: join opens the resolver's sockets in the sandbox and writes its resolv.conf. */
  wrapDns(dns: DnsHooks): DnsHooks {
    return traced(this.#observer, dns, 'dns', ['join', 'leave'], (_, args) => ({ network: netOf(args[1]) }));
  }

  wrapLb<T extends LbHooks>(lb: T): T {
    return traced(this.#observer, lb, 'lb', ['sync', 'remove', 'removeNetwork'], (_, args) => ({
      network: netOf(args[0]),
      service: netOf(args[1]),
    }));
  }

  wrapIpam(ipam: Ipam): void {
    traceIpam(this.#observer, ipam);
  }

  instrument(controller: NetworkController, cluster: Cluster | undefined): void {
    if (!this.on) return;
    instrumentController(this.#observer, controller);
    if (cluster) this.#watch = instrumentCluster(this.#observer, cluster);
  }

  /** Starts reading the daemon's state, and listens on --metrics-addr. */
  async serve(sources: TelemetrySources): Promise<void> {
    this.#sources = sources;
    const addr = this.#o.metricsAddr;
    const prometheus = this.#metrics?.prometheus;
    if (!addr || !prometheus) return;
    this.#server = new MetricsServer({
      ...addr,
      metrics: (req, res) => prometheus.getMetricsRequestHandler(req, res),
      status: () =>
        statusDoc({
          controller: sources.controller,
          ipam: sources.ipam,
          host: this.#host,
          cluster: sources.cluster,
          dataplanes: sources.dataplanes,
          errors: () => this.#o.log.recent(),
        }),
    });
    await this.#server.start();
  }

  /** Where the listener is (its port when --metrics-addr asked for port 0). */
  get address(): { host: string; port: number } | undefined {
    const a = this.#server?.address;
    return a ? { host: a.address, port: a.port } : undefined;
  }

  /** Stops listening, pushes what is left (a last OTLP export, buffered spans). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    unsubscribe(upstreamChannel.name, this.#onUpstream);
    await this.#server?.close();
    this.#stopEvents?.();
    await this.#metrics?.close();
    await this.#tracing?.close();
  }
}

const netOf = (x: unknown) => (x as { spec?: { name?: string } } | undefined)?.spec?.name;
