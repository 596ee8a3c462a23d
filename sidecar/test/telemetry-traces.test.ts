// Spans as instrument.ts makes them, kept in memory: an operation with its steps as children and
// the error code where it failed, and a cluster resync with a step per bucket it watches again.
import { Ipam, MemoryStore } from '@cnmd/ipam';
import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../src/cluster/cluster.js';
import { memoryBuckets } from '../src/cluster/memory-kv.js';
import { SidecarError } from '../src/errors.js';
import { instrumentCluster, type Observer, op, step, traced } from '../src/telemetry/instrument.js';
import { Logger } from '../src/telemetry/log.js';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const lines: string[] = [];
let o: Observer;

beforeAll(() => {
  provider.register(); // the AsyncLocalStorage context: a step awaited in an operation is its child
  o = {
    tracer: provider.getTracer('test'),
    instruments: undefined,
    log: new Logger({ format: 'json', level: 'debug', write: (t) => lines.push(t) }),
  };
});

afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

const spans = () => exporter.getFinishedSpans();
const parent = (s: ReturnType<typeof spans>[number]) => s.parentSpanContext?.spanId;

describe('operations and steps', () => {
  it('a step awaited inside an operation is its child; a failed one carries the code, as does the operation', async () => {
    exporter.reset();
    const hooks = traced(
      o,
      { async join(_: unknown) {}, async publish(_: unknown) {} },
      'firewall',
      ['publish'],
      () => ({
        network: 'front',
      }),
    );
    await expect(
      op(
        o,
        { span: 'cnmd.attach', what: 'attach a to front', fields: { network: 'front', sandbox: 'a' } },
        async () => {
          await step(o, 'ipam.requestAddress', {}, async () => {});
          await hooks.join(1); // not a step: left as it is
          await hooks.publish(1);
          await step(o, 'dns.join', {}, async () => {
            throw new SidecarError('SIDECAR_SOCKET', 'bind failed');
          });
        },
      ),
    ).rejects.toMatchObject({ code: 'SIDECAR_SOCKET' });
    const root = spans().find((s) => s.name === 'cnmd.attach')!;
    expect(root.attributes).toMatchObject({
      'cnmd.network': 'front',
      'cnmd.sandbox': 'a',
      'cnmd.code': 'SIDECAR_SOCKET',
    });
    expect(root.status.code).toBe(2);
    const children = spans().filter((s) => parent(s) === root.spanContext().spanId);
    expect(children.map((s) => s.name)).toEqual(['ipam.requestAddress', 'firewall.publish', 'dns.join']);
    expect(children[1]!.attributes['cnmd.network']).toBe('front');
    expect(children[2]!.attributes).toMatchObject({ 'cnmd.code': 'SIDECAR_SOCKET', 'error.type': 'SIDECAR_SOCKET' });
    const line = JSON.parse(lines.at(-1)!);
    expect(line).toMatchObject({ level: 'error', code: 'SIDECAR_SOCKET', network: 'front', sandbox: 'a' });
  });
});

describe('a cluster resync', () => {
  it('is a span with a step per bucket it watches again', async () => {
    exporter.reset();
    const store = new MemoryStore();
    const ipam = new Ipam({ store });
    await ipam.start();
    const c = new Cluster({
      hostId: 'a',
      servers: [],
      graceMs: 10_000,
      store,
      ipam,
      log: () => {},
      buckets: memoryBuckets(),
    });
    try {
      instrumentCluster(o, c);
      await c.load();
      c.start({ network: () => {}, service: () => {}, endpoint: () => {}, own: () => [] }); // resyncs at once
      await c.resync(); // joins the one running, or runs again
      await new Promise((r) => setTimeout(r, 50));
      const resyncs = spans().filter((s) => s.name === 'cnmd.cluster.resync');
      expect(resyncs.length).toBeGreaterThanOrEqual(1);
      const watches = spans().filter(
        (s) => s.name === 'cluster.watch' && parent(s) === resyncs[0]!.spanContext().spanId,
      );
      // A resync asked for while one runs makes it run once more: each bucket once a round.
      expect([...new Set(watches.map((s) => s.attributes['cnmd.bucket']))].sort()).toEqual([
        'cnmd_endpoints',
        'cnmd_hosts',
        'cnmd_ipam',
        'cnmd_networks',
        'cnmd_services',
      ]);
      expect(watches.every((s) => typeof s.attributes['cnmd.changes'] === 'number')).toBe(true);
    } finally {
      await c.close();
    }
  });
});
