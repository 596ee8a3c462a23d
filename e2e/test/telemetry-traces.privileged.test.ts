// Traces and pushed metrics as an OpenTelemetry collector gets them: an OTLP/HTTP receiver in
// the test (JSON bodies, as the daemon's exporters send them), listening inside the simulated
// host, gets an attach span with a child span per step and its attributes, and a failing
// attach's span with its error code; the same variables push the metrics there too.
import http from 'node:http';
import { listenTcpIn } from '@cnmd/sidecar';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns } from '../src/netns.js';

const PORT = 4318;

interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: { key: string; value: AnyValue }[];
  status?: { code?: number; message?: string };
}

/** What the receiver got: spans, metric names, and the resource's service.name. */
const got = {
  spans: [] as OtlpSpan[],
  metrics: new Set<string>(),
  services: new Set<string>(),
  paths: new Set<string>(),
};

function attr(s: OtlpSpan, key: string): string | number | boolean | undefined {
  const v = s.attributes?.find((a) => a.key === key)?.value;
  return v?.stringValue ?? v?.boolValue ?? (v?.intValue !== undefined ? Number(v.intValue) : v?.doubleValue);
}

/** OTLP/HTTP with JSON bodies (opentelemetry-proto's JSON mapping): /v1/traces, /v1/metrics. */
const receiver = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    got.paths.add(`${req.method} ${req.url} ${req.headers['content-type']}`);
    const doc = JSON.parse(body) as {
      resourceSpans?: {
        resource?: { attributes?: { key: string; value: AnyValue }[] };
        scopeSpans?: { spans?: OtlpSpan[] }[];
      }[];
      resourceMetrics?: { scopeMetrics?: { metrics?: { name: string }[] }[] }[];
    };
    for (const rs of doc.resourceSpans ?? []) {
      const svc = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue;
      if (svc) got.services.add(svc);
      for (const ss of rs.scopeSpans ?? []) got.spans.push(...(ss.spans ?? []));
    }
    for (const rm of doc.resourceMetrics ?? []) {
      for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) got.metrics.add(m.name);
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});

let host: TestHost;
const sandboxes: Netns[] = [];
/** The standard variables, for the daemon alone: set while TestHost spawns it, then taken back. */
const OTEL = {
  OTEL_TRACES_EXPORTER: 'otlp',
  OTEL_METRICS_EXPORTER: 'otlp',
  OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${PORT}`,
  OTEL_SERVICE_NAME: 'cnmd-under-test',
  OTEL_BSP_SCHEDULE_DELAY: '100',
  OTEL_METRIC_EXPORT_INTERVAL: '500',
};
const unset = () => {
  for (const k of Object.keys(OTEL)) delete process.env[k];
};

async function until(fn: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  // The daemon (spawned by TestHost) inherits this worker's environment.
  Object.assign(process.env, OTEL);
  host = await TestHost.start({
    // The receiver listens inside the host before the daemon starts exporting to it.
    prepare: async (ns) => {
      const server = await listenTcpIn(ns.path, '127.0.0.1', PORT);
      server.on('connection', (sock) => receiver.emit('connection', sock));
      receiver.once('close', () => server.close());
    },
  });
  unset();
  await host.ok('network', 'create', 'front', '--subnet', '10.119.0.0/24');
});

afterAll(async () => {
  unset();
  for (const s of sandboxes) await s.remove().catch(() => {});
  await host?.close();
  receiver.close();
  receiver.closeAllConnections();
});

it('an attach is a span with a child span per step, with the endpoint and sandbox', async () => {
  const sb = await Netns.create('cnmd-sb');
  sandboxes.push(sb);
  await host.ok('attach', sb.name, '--network', 'front', '--name', 'traced');
  await until(() => got.spans.some((s) => s.name === 'cnmd.attach' && attr(s, 'cnmd.name') === 'traced'));
  const root = got.spans.find((s) => s.name === 'cnmd.attach' && attr(s, 'cnmd.name') === 'traced')!;
  expect(root.parentSpanId ?? '').toBe('');
  expect(attr(root, 'cnmd.network')).toBe('front');
  expect(attr(root, 'cnmd.sandbox')).toBe(sb.name);
  expect(attr(root, 'cnmd.endpoint')).toMatch(/^[0-9a-f]{12}$/);
  expect(attr(root, 'cnmd.address')).toMatch(/^10\.119\.0\./);
  expect(root.status?.code ?? 0).not.toBe(2);
  // Its steps, each a child of it (the netlink requests are children of the steps that make them).
  await until(() => got.spans.filter((s) => s.parentSpanId === root.spanId).length >= 4);
  const children = got.spans.filter((s) => s.parentSpanId === root.spanId).map((s) => s.name);
  expect(children).toEqual(expect.arrayContaining(['ipam.requestAddress', 'driver.join', 'dns.join']));
  expect(children.some((n) => n.startsWith('netlink.'))).toBe(true); // addresses, routes in the sandbox
  const inTrace = got.spans.filter((s) => s.traceId === root.traceId).map((s) => s.name);
  expect(inTrace).toEqual(expect.arrayContaining(['netlink.addVeth', 'netlink.addAddress', 'netlink.addRoute']));
  const join = got.spans.find((s) => s.parentSpanId === root.spanId && s.name === 'driver.join')!;
  expect(attr(join, 'cnmd.driver')).toBe('bridge');
  expect(got.services).toEqual(new Set(['cnmd-under-test']));
});

it("a failing attach's span carries its error code, as does the step that failed", async () => {
  const sb = await Netns.create('cnmd-sb');
  sandboxes.push(sb);
  const taken = await host.cli('attach', sb.name, '--network', 'front', '--ip', '10.119.0.1'); // the gateway
  expect(taken.code).not.toBe(0);
  const code = /cnmd: ([A-Z_]+):/.exec(taken.err)![1]!;
  await until(() => got.spans.some((s) => s.name === 'cnmd.attach' && attr(s, 'cnmd.sandbox') === sb.name));
  const root = got.spans.find((s) => s.name === 'cnmd.attach' && attr(s, 'cnmd.sandbox') === sb.name)!;
  expect(root.status?.code).toBe(2); // STATUS_CODE_ERROR
  expect(attr(root, 'cnmd.code')).toBe(code);
  expect(attr(root, 'error.type')).toBe(code);
  const failed = got.spans.filter(
    (s) => s.traceId === root.traceId && s.spanId !== root.spanId && s.status?.code === 2,
  );
  expect(failed.map((s) => [s.name, attr(s, 'cnmd.code')])).toContainEqual(['ipam.requestAddress', code]);
  // And the log line of the failure has the same code.
  expect(host.log).toMatch(new RegExp(`cnmd: error: attach ${sb.name} to front: ${code}`));
});

it('pushes the metrics over OTLP too, under the same names', async () => {
  // Pushed every 500 ms here (OTEL_METRIC_EXPORT_INTERVAL): the failure of the last test in a later push.
  await until(
    () => got.metrics.has('cnmd_sidecar_attach_duration_seconds') && got.metrics.has('cnmd_sidecar_attach_failures'),
  );
  expect(got.metrics).toContain('cnmd_dns_requests');
  expect([...got.paths]).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^POST \/v1\/traces application\/json/),
      expect.stringMatching(/^POST \/v1\/metrics application\/json/),
    ]),
  );
});
