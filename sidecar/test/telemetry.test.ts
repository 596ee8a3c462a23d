// Telemetry without a daemon: the OTEL_* variables, the log's lines and levels, the status page's
// escaping, pool sizes, and the DNS counters as metric data.
import { describe, expect, it } from 'vitest';
import { dnsMetricData } from '../src/telemetry/dns-metrics.js';
import { Logger, levelOf } from '../src/telemetry/log.js';
import { otelEnv } from '../src/telemetry/otel-env.js';
import type { StatusDoc } from '../src/telemetry/status.js';
import { poolSize } from '../src/telemetry/status.js';
import { STATUS_PAGE_CSP, statusPage } from '../src/telemetry/status-page.js';

describe('the OTEL_* variables', () => {
  it.each([
    [{}, false, false],
    [{ OTEL_TRACES_EXPORTER: 'otlp' }, true, false],
    [{ OTEL_METRICS_EXPORTER: 'otlp' }, false, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, true, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }, true, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318', OTEL_TRACES_EXPORTER: 'none' }, false, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318', OTEL_METRICS_EXPORTER: 'prometheus' }, true, false],
    [{ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }, false, false],
  ])('%j: traces %s, metrics %s', (env, traces, metrics) => {
    expect(otelEnv(env)).toMatchObject({ traces, metrics, problems: [] });
  });

  it('says what it cannot do', () => {
    const e = otelEnv({
      OTEL_TRACES_EXPORTER: 'zipkin',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_METRICS_EXPORTER: 'otlp',
    });
    expect(e.traces).toBe(false);
    expect(e.problems.join('\n')).toMatch(/zipkin is not supported[\s\S]*grpc: cnmd sends http\/json/);
  });

  it('reads the push interval, the timeout no longer than it', () => {
    expect(otelEnv({ OTEL_METRIC_EXPORT_INTERVAL: '1000' })).toMatchObject({
      metricInterval: 1000,
      metricTimeout: 1000,
    });
    expect(otelEnv({ OTEL_METRIC_EXPORT_INTERVAL: 'soon' }).problems).toHaveLength(1);
  });
});

describe('the log', () => {
  it.each([
    ['reconcile: endpoint bad on f (x): SIDECAR_LINK_EXISTS: eth0 exists', 'error', 'SIDECAR_LINK_EXISTS'],
    ['docker: container web (3f2a) left alone: label cnmd.networks="x@y": y is not an IP address', 'warn', undefined],
    ['cluster: host h2 is gone', 'warn', undefined],
    ['cluster: connected to nats://a:4222 as h1', 'info', undefined],
    ['network web: load balancing with nftables in cnmd-lb-0123456789', 'info', undefined],
  ])('%s: %s', (line, level, code) => {
    expect(levelOf(line)).toEqual(code ? { level, code } : { level });
  });

  it('writes text with the level, or JSON lines with the fields', () => {
    const out: string[] = [];
    const now = () => new Date('2026-01-02T03:04:05.000Z');
    new Logger({ format: 'text', level: 'info', write: (t) => out.push(t), now }).info('attach a to b: done', {
      network: 'b',
    });
    const json = new Logger({ format: 'json', level: 'info', write: (t) => out.push(t), now });
    json.error('attach x to y: SIDECAR_NAME_IN_USE: taken', {
      network: 'y',
      sandbox: '/run/netns/x',
      code: 'SIDECAR_NAME_IN_USE',
      endpoint: undefined,
    });
    json.line('cluster: host h2 is gone');
    expect(out[0]).toBe('cnmd: info: attach a to b: done\n');
    expect(JSON.parse(out[1]!)).toEqual({
      time: '2026-01-02T03:04:05.000Z',
      level: 'error',
      msg: 'attach x to y: SIDECAR_NAME_IN_USE: taken',
      network: 'y',
      sandbox: '/run/netns/x',
      code: 'SIDECAR_NAME_IN_USE',
    });
    expect(JSON.parse(out[2]!)).toMatchObject({ level: 'warn', msg: 'cluster: host h2 is gone' });
    expect(out.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
  });

  it('drops lines below its level, and keeps the last warnings and errors whatever the level', () => {
    const out: string[] = [];
    const log = new Logger({ format: 'text', level: 'error', write: (t) => out.push(t), keep: 2 });
    log.info('hello');
    log.warn('one');
    log.warn('two');
    log.error('three', { code: 'X_Y' });
    expect(out).toEqual(['cnmd: error: three\n']);
    expect(log.recent().map((e) => e.msg)).toEqual(['two', 'three']);
  });
});

describe('the status page', () => {
  const evil = '<img src=x onerror=alert(1)></script><script>alert(2)</script>';
  const doc: StatusDoc = {
    host: 'h1',
    time: '2026-01-02T03:04:05.000Z',
    networks: [],
    endpoints: [
      {
        name: evil,
        sandbox: '/run/netns/a',
        network: 'front',
        host: 'h1',
        aliases: [],
        addresses: [],
        status: 'ready',
      },
    ],
    services: [],
    errors: [{ time: 'now', level: 'error', msg: evil }],
  };

  it('carries names only inside a JSON data block, every < escaped', () => {
    const html = statusPage(doc);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('alert(2)</script>');
    const block = /<script type="application\/json" id="status">(.*?)<\/script>/s.exec(html)![1]!;
    expect(block).not.toContain('<');
    expect((JSON.parse(block) as StatusDoc).endpoints[0]!.name).toBe(evil);
  });

  it('builds cells with textContent only, under a policy that runs no other script', () => {
    const script = /<script>([\s\S]*?)<\/script>/.exec(statusPage(doc))![1]!;
    expect(script).toContain('textContent');
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    expect(STATUS_PAGE_CSP).toMatch(/default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(STATUS_PAGE_CSP).not.toContain('unsafe-inline');
  });

  it.each([
    ['10.0.0.0/24', '10.0.0.1', 253],
    ['10.0.0.0/24', false, 254],
    ['172.17.0.0/16', '172.17.0.1', 65533],
    ['10.0.0.0/31', false, 2],
    ['fd00::/64', 'fd00::1', 2 ** 53 - 1],
    ['fd00::/120', false, 256],
  ] as const)('a pool %s (gateway %s) hands out %d addresses', (cidr, gw, n) => {
    expect(poolSize(cidr, gw)).toBe(n);
  });
});

describe('DNS counters as metric data', () => {
  it('names, labels and units as CoreDNS would, leaving out what counted nothing', () => {
    const data = dnsMetricData(
      {
        views: [
          {
            networks: 'front,back',
            since: 1000,
            requests: [{ type: 'A', rcode: 'NOERROR', count: 7 }],
            duration: { bounds: [0.000025, 0.00005], counts: [6, 1, 0], sum: 0.0002, count: 7 },
          },
        ],
        cache: { hits: 2, misses: 3, entries: 1 },
        forwards: [],
        upstreams: [{ upstream: '10.0.0.53:53', up: false }],
        malformed: 0,
        internalErrors: 0,
        since: 500,
      },
      5000,
    );
    const byName = new Map(data.map((m) => [m.descriptor.name, m]));
    expect(byName.get('cnmd_dns_requests')!.dataPoints).toEqual([
      expect.objectContaining({ attributes: { network: 'front,back', type: 'A', rcode: 'NOERROR' }, value: 7 }),
    ]);
    const h = byName.get('cnmd_dns_request_duration_seconds')!;
    expect(h.descriptor.unit).toBe('s');
    expect(h.dataPoints[0]).toMatchObject({
      startTime: [1, 0],
      endTime: [5, 0],
      value: { buckets: { boundaries: [0.000025, 0.00005], counts: [6, 1, 0] }, count: 7 },
    });
    expect(byName.get('cnmd_dns_upstream_up')!.dataPoints[0]).toMatchObject({ value: 0 });
    expect(byName.get('cnmd_dns_forward_requests')!.dataPoints).toEqual([]);
  });
});
