// Hosts of one cluster over buckets in memory (JetStream KV's semantics; the real NATS is the
// e2e tests'): claims that exactly one host wins, records that reach the others, liveness.
import { Ipam, MemoryStore } from '@cnmd/ipam';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, type ClusterSink } from '../../src/cluster/cluster.js';
import { memoryBuckets } from '../../src/cluster/memory-kv.js';
import type { EndpointRecord, NetworkRecord, RemoteEndpoint } from '../../src/network/records.js';
import type { NetworkSpec } from '../../src/network/spec.js';

const spec = (name: string, subnet?: string): NetworkSpec => ({
  name,
  driver: 'bridge',
  scope: 'global',
  ipv6: false,
  internal: false,
  icc: true,
  mtu: 1500,
  options: {},
  ...(subnet ? { subnet } : {}),
});

interface Host {
  cluster: Cluster;
  ipam: Ipam;
  told: string[];
  own: EndpointRecord[];
  remote: Map<string, RemoteEndpoint>;
}

const open: Host[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.cluster.close();
});

async function host(name: string, buckets: ReturnType<typeof memoryBuckets>, graceMs = 10_000): Promise<Host> {
  const store = new MemoryStore();
  const ipam = new Ipam({ store });
  await ipam.start();
  const told: string[] = [];
  const h: Host = { cluster: undefined as never, ipam, told, own: [], remote: new Map() };
  const sink: ClusterSink = {
    network: (now, old) => told.push(`network ${(now ?? old)!.spec.name} ${now ? 'up' : 'down'}`),
    service: (now, old) => told.push(`service ${(now ?? old)!.spec.name} ${now ? 'up' : 'down'}`),
    endpoint: (now, old) => {
      if (old) h.remote.delete(old.id);
      if (now) h.remote.set(now.id, now);
    },
    own: () => h.own,
  };
  h.cluster = new Cluster({ hostId: name, servers: [], graceMs, store, ipam, log: () => {}, buckets });
  await h.cluster.load();
  h.cluster.start(sink);
  await h.cluster.resync();
  open.push(h);
  return h;
}

/** The network as each host makes it: its pool in that host's IPAM. */
async function localNetwork(h: Host, g: { id: string; subnet: string; gateway?: string }): Promise<NetworkRecord> {
  const pool = await h.ipam.requestPool({ space: 'global', subnet: g.subnet, gateway: g.gateway ?? false });
  return { id: g.id, spec: spec('n'), device: 'x', pool4: pool.id, subnet: g.subnet, created: '', state: 'ready' };
}

function endpoint(id: string, net: string, ip: string, name: string): EndpointRecord {
  return {
    id: id.repeat(64).slice(0, 64),
    containerId: id.repeat(64).slice(0, 64),
    sandbox: '/x',
    sandboxKey: '1:1',
    network: net,
    name,
    aliases: [],
    ifname: 'eth0',
    hostIf: 'vcn',
    ip,
    publish: [],
    defaultRoute: false,
    state: 'ready',
  };
}

describe('global networks', () => {
  it('one host creates, every host hears it; subnets come from 10.0.0.0/8 and never overlap', async () => {
    const kv = memoryBuckets();
    const [a, b] = [await host('a', kv), await host('b', kv)];
    const n1 = await a.cluster.createNetwork(spec('one'), { gateway: true, vni: false });
    const n2 = await b.cluster.createNetwork(spec('two'), { gateway: true, vni: false });
    expect([n1.subnet, n2.subnet]).toEqual(['10.0.0.0/24', '10.0.1.0/24']);
    expect(n1.gateway).toBe('10.0.0.1');
    expect(b.told).toContain('network one up');
    expect(a.told).toContain('network two up');
    await expect(b.cluster.createNetwork(spec('one'), { gateway: true, vni: false })).rejects.toMatchObject({
      code: 'SIDECAR_NETWORK_EXISTS',
    });
    await expect(
      b.cluster.createNetwork(spec('three', '10.0.0.128/25'), { gateway: true, vni: false }),
    ).rejects.toMatchObject({
      code: 'IPAM_POOL_OVERLAP',
    });
  });
});

describe('address blocks', () => {
  it('three hosts racing for the last addresses of a small subnet never hold one twice', async () => {
    const kv = memoryBuckets();
    const hosts = [await host('h1', kv), await host('h2', kv), await host('h3', kv)];
    const g = await hosts[0]!.cluster.createNetwork(spec('tiny', '10.9.0.0/27'), { gateway: true, vni: false }); // /29 blocks
    const nets = await Promise.all(hosts.map((h) => localNetwork(h, g)));
    const got: string[][] = [[], [], []];
    await Promise.all(
      hosts.map(async (h, i) => {
        for (;;) {
          try {
            got[i]!.push((await h.cluster.requestAddress(nets[i]!, {})).address);
          } catch (err) {
            expect((err as { code?: string }).code).toBe('IPAM_POOL_EXHAUSTED');
            return;
          }
        }
      }),
    );
    const all = got.flat();
    expect(new Set(all).size).toBe(all.length);
    // 32 addresses less the network's, the gateway and the broadcast: every one is handed out.
    expect(all.length).toBe(29);
    expect(all).not.toContain('10.9.0.1');
  });

  it('a block left empty goes back, and another host may take it', async () => {
    const kv = memoryBuckets();
    const [a, b] = [await host('a', kv), await host('b', kv)];
    const g = await a.cluster.createNetwork(spec('n', '10.9.0.0/28'), { gateway: true, vni: false }); // four /30 blocks
    const [na, nb] = [await localNetwork(a, g), await localNetwork(b, g)];
    const x = await a.cluster.requestAddress(na, {});
    expect(x.address).toBe('10.9.0.2'); // block 0: .0 network, .1 gateway
    expect(kv.ipam.entries().filter((e) => e.key.startsWith('block.')).length).toBe(1);
    await a.cluster.releaseAddress(na, x.address);
    expect(kv.ipam.entries().filter((e) => e.key.startsWith('block.'))).toEqual([]);
    expect((await b.cluster.requestAddress(nb, { address: '10.9.0.2' })).address).toBe('10.9.0.2');
    await expect(a.cluster.requestAddress(na, { address: '10.9.0.3' })).rejects.toMatchObject({
      code: 'IPAM_ADDRESS_IN_USE',
    });
  });
});

describe('endpoints and hosts', () => {
  it("a host's endpoints reach the others; a resync puts back only what differs", async () => {
    const kv = memoryBuckets();
    const [a, b] = [await host('a', kv), await host('b', kv)];
    const g = await a.cluster.createNetwork(spec('n'), { gateway: true, vni: false });
    const na = await localNetwork(a, g);
    const e1 = endpoint('1', g.id, '10.0.0.2', 'web1');
    a.own.push(e1);
    a.cluster.publish(na, e1, true);
    await a.cluster.close(); // lets the put finish
    expect([...b.remote.values()].map((e) => `${e.host} ${e.name} ${e.ip}`)).toEqual(['a web1 10.0.0.2']);
    // Written behind its back: a resync puts it back as a.own says, and removes a stray one.
    const before = kv.endpoints.entries().length;
    await kv.endpoints.delete(`host.a.${e1.id}`);
    await kv.endpoints.create(
      `host.a.${'9'.repeat(64)}`,
      JSON.stringify({ ...e1, v: 1, host: 'a', id: '9'.repeat(64) }),
    );
    const a2 = await host('a', kv);
    a2.own.push(e1);
    await a2.cluster.resync();
    expect(kv.endpoints.entries().map((e) => e.key)).toEqual([`host.a.${e1.id}`]);
    expect(kv.endpoints.entries().length).toBe(before);
  });

  it('a host silent past the grace is withdrawn, and restored when it beats again', async () => {
    const kv = memoryBuckets();
    const b = await host('b', kv, 300);
    // host "a" as a buggy or dead peer would look: records and one heartbeat, written by hand
    const e = {
      v: 1,
      host: 'a',
      id: '1'.repeat(64),
      network: '2'.repeat(64),
      containerId: '3'.repeat(64),
      aliases: [],
    };
    await kv.hosts.create('a', JSON.stringify({ v: 1, host: 'a', at: Date.now(), started: 0 }));
    await kv.endpoints.create(`host.a.${e.id}`, JSON.stringify(e));
    expect(b.remote.size).toBe(1);
    await new Promise((r) => setTimeout(r, 700));
    expect(b.remote.size).toBe(0);
    expect(b.cluster.status().hosts.find((h) => h.host === 'a')?.alive).toBe(false);
    const beat = kv.hosts.entries().find((x) => x.key === 'a')!;
    await kv.hosts.update('a', JSON.stringify({ v: 1, host: 'a', at: Date.now(), started: 0 }), beat.revision);
    expect(b.remote.size).toBe(1);
  });

  it('a record that does not decode is ignored, and changes nothing', async () => {
    const kv = memoryBuckets();
    const logs: string[] = [];
    const store = new MemoryStore();
    const ipam = new Ipam({ store });
    await ipam.start();
    const c = new Cluster({
      hostId: 'b',
      servers: [],
      graceMs: 10_000,
      store,
      ipam,
      log: (l) => logs.push(l),
      buckets: kv,
    });
    open.push({ cluster: c } as Host);
    const remote: string[] = [];
    c.start({ network: () => {}, service: () => {}, endpoint: (n) => n && remote.push(n.id), own: () => [] });
    await c.resync();
    await kv.endpoints.create(`host.a.${'1'.repeat(64)}`, '{"v":1,"host":"evil","id":"x"}');
    await kv.endpoints.create(`host.a.${'2'.repeat(64)}`, '{"v":9}');
    expect(remote).toEqual([]);
    expect(logs.filter((l) => l.includes('ignored'))).toEqual([
      expect.stringMatching(/ignored cnmd_endpoints host\.a\.1+: written for host evil under host a's key/),
      expect.stringMatching(/ignored cnmd_endpoints host\.a\.2+: from a newer version \(v9\)/),
    ]);
  });
});
