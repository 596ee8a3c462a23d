// The metrics listener on a real socket (port 0): /metrics in Prometheus's text format with the
// DNS server's counters and the daemon's instruments, the status page and its JSON, read-only.
import { DnsServer } from '@cnmd/dns';
import { Ipam, MemoryStore } from '@cnmd/ipam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../src/cluster/cluster.js';
import { memoryBuckets } from '../src/cluster/memory-kv.js';
import type { NetworkController } from '../src/network/controller.js';
import { Logger } from '../src/telemetry/log.js';
import { Telemetry } from '../src/telemetry/telemetry.js';

/** What statusDoc and the gauges read of a controller (one network, one endpoint, one service),
 * and the operations telemetry wraps. */
function fakeController(): NetworkController {
  const net = {
    id: 'a'.repeat(64),
    spec: { name: 'front', driver: 'bridge', scope: 'local', internal: false },
    pool4: 'p1',
    subnet: '10.1.0.0/24',
    state: 'ready',
  };
  const ep = {
    id: 'b'.repeat(64),
    name: 'web1',
    sandbox: '/run/netns/web1',
    sandboxKey: '1:2',
    network: net.id,
    aliases: ['www'],
    ip: '10.1.0.5',
    state: 'ready',
  };
  const operation = async () => ({});
  return {
    attachNow: operation,
    destroyEndpoint: operation,
    createService: operation,
    removeService: operation,
    createNetwork: operation,
    removeNetwork: operation,
    driverOf: () => ({}),
    networks: { all: () => [net], get: (id: string) => (id === net.id ? net : undefined) },
    endpoints: { all: () => [ep] },
    failed: new Map(),
    cluster: undefined,
    listNetworks: () => [{ ...net.spec, id: net.id, subnet: net.subnet, gateway: '10.1.0.1', endpoints: 1 }],
    listServices: () => [
      {
        name: 'api',
        network: 'front',
        mode: 'vip',
        vip: '10.1.0.2',
        ports: [{ proto: 'tcp', port: 80 }],
        scheduler: 'rr',
        health: { type: 'http', port: 80, path: '/healthz' },
        backends: [
          { name: 'web1', address: '10.1.0.5', weight: 1, health: 'healthy' },
          { name: 'web2', address: '10.1.0.6', weight: 1, health: 'unhealthy' },
        ],
      },
    ],
  } as unknown as NetworkController;
}

const ipam = { pool: () => ({ subnet: '10.1.0.0/24', gateway: '10.1.0.1', used: 3 }) } as unknown as Ipam;

const quiet = () => new Logger({ format: 'text', level: 'error', write: () => {} });

let telemetry: Telemetry;
let dns: DnsServer;
let base: string;

beforeAll(async () => {
  telemetry = new Telemetry({
    metricsAddr: { host: '127.0.0.1', port: 0 },
    env: {},
    log: quiet(),
    hostId: 'h1',
  });
  dns = new DnsServer({ upstreams: [], metrics: telemetry.metrics });
  dns.table.upsertEndpoint({ network: 'front', id: 'c1', name: 'web1', addresses: ['10.1.0.5'] });
  let handler: ((p: Buffer, peer: unknown) => Buffer | undefined) | undefined;
  dns.addSandbox('sb', {
    udp: { listen: (h) => void (handler = h), send: () => {}, close: async () => {} },
    networks: ['front'],
    forward: false,
  });
  await dns.start();
  // Three queries for web1 A: RFC 1035 4.1, ID 1, RD, one question.
  const q = Buffer.concat([
    Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    Buffer.from('\x04web1\x00\x00\x01\x00\x01', 'latin1'),
  ]);
  for (let i = 0; i < 3; i++) expect(handler!(q, {})).toBeDefined();
  await new Promise((r) => setImmediate(r));
  await telemetry.serve({ controller: fakeController(), ipam, dns, dataplanes: () => ({ front: 'nftables' }) });
  base = `http://127.0.0.1:${telemetry.address!.port}`;
});

afterAll(async () => {
  await telemetry?.close();
  await dns?.close();
});

describe('the metrics listener', () => {
  it('serves the DNS counters and the gauges in Prometheus text format, nothing of OTel besides', async () => {
    const r = await fetch(`${base}/metrics`);
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).toContain('cnmd_dns_requests_total{network="front",type="A",rcode="NOERROR"} 3');
    expect(text).toMatch(/cnmd_dns_request_duration_seconds_bucket\{network="front",le="2\.5e-05|0\.000025"\} \d/);
    expect(text).toContain('cnmd_dns_request_duration_seconds_count{network="front"} 3');
    expect(text).toContain('cnmd_lb_backends{network="front",service="api",health="unhealthy"} 1');
    expect(text).toContain('cnmd_sidecar_endpoints{network="front",status="ready"} 1');
    expect(text).toContain('cnmd_ipam_pool_used_addresses{network="front",family="ipv4"} 3');
    expect(text).toContain('cnmd_ipam_pool_size_addresses{network="front",family="ipv4"} 253');
    expect(text).not.toMatch(/otel_scope_name|target_info/);
  });

  it('serves the status page under its policy, and its JSON', async () => {
    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await page.text()).toContain('<table id="backends">');
    const doc = (await (await fetch(`${base}/status.json`)).json()) as {
      services: { backends: { health: string }[]; dataplane: string }[];
    };
    expect(doc.services[0]).toMatchObject({ dataplane: 'nftables' });
    expect(doc.services[0]!.backends.map((b) => b.health)).toEqual(['healthy', 'unhealthy']);
  });

  it('is read-only', async () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await fetch(`${base}/`, { method });
      expect(r.status).toBe(405);
    }
    expect((await fetch(`${base}/nothing`)).status).toBe(404);
  });
});

describe('the cluster, as metrics', () => {
  const open: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const o of open.reverse()) await o.close();
  });

  async function member(name: string, buckets: ReturnType<typeof memoryBuckets>): Promise<Cluster> {
    const store = new MemoryStore();
    const ipam = new Ipam({ store });
    await ipam.start();
    const c = new Cluster({ hostId: name, servers: [], graceMs: 1000, store, ipam, log: () => {}, buckets });
    open.push(c);
    await c.load();
    return c;
  }

  it('tells the connection, the hosts, their heartbeats, the watch lag and the resync time', async () => {
    const buckets = memoryBuckets();
    const a = await member('a', buckets);
    const b = await member('b', buckets);
    const t = new Telemetry({ metricsAddr: { host: '127.0.0.1', port: 0 }, env: {}, log: quiet(), hostId: 'a' });
    open.push(t);
    const dns = new DnsServer({ upstreams: [] });
    open.push(dns);
    t.instrument(fakeController(), a);
    const sink = { network: () => {}, service: () => {}, endpoint: () => {}, own: () => [] };
    a.start(sink);
    b.start(sink);
    await t.serve({ controller: fakeController(), ipam, dns, cluster: a, dataplanes: () => ({}) });
    const metrics = async () => (await fetch(`http://127.0.0.1:${t.address!.port}/metrics`)).text();
    // b's beats reach a, and a's own beat comes back through its watch (every graceMs / 4).
    for (let i = 0; i < 100; i++) {
      const text = await metrics();
      if (text.includes('cnmd_sidecar_cluster_heartbeat_age_seconds{host="b"}') && text.includes('watch_lag')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const text = await metrics();
    expect(text).toContain('cnmd_sidecar_cluster_connected 1');
    expect(text).toContain('cnmd_sidecar_cluster_hosts{state="alive"} 2');
    expect(text).toMatch(/cnmd_sidecar_cluster_heartbeat_age_seconds\{host="b"\} [\d.e-]+\n/);
    expect(text).toMatch(/cnmd_sidecar_cluster_watch_lag_seconds [\d.e-]+\n/);
    expect(text).toMatch(/cnmd_sidecar_cluster_resync_duration_seconds_count [1-9]/);
    const doc = (await (await fetch(`http://127.0.0.1:${t.address!.port}/status.json`)).json()) as {
      cluster: { connected: boolean; hosts: { host: string; alive: boolean }[] };
    };
    expect(doc.cluster.connected).toBe(true);
    expect(doc.cluster.hosts.map((h) => [h.host, h.alive]).sort()).toEqual([
      ['a', true],
      ['b', true],
    ]);
  });
});
