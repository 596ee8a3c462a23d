// The keys of encrypted overlays, between hosts of one cluster over buckets in memory: made with
// the network, never shown, rotated in three steps that wait for every live host, so that no host
// ever sends with a key another cannot receive with yet. (The kernel's side, IPsec states and
// policies, is the VM's test: e2e/test/overlay-encrypted.vm.test.ts.)
import { Ipam, MemoryStore } from '@cnmd/ipam';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster } from '../../src/cluster/cluster.js';
import { memoryBuckets } from '../../src/cluster/memory-kv.js';
import type { NetworkKeys } from '../../src/network/driver.js';
import type { NetworkRecord } from '../../src/network/records.js';
import type { NetworkSpec } from '../../src/network/spec.js';

const overlay = (name: string, options: Record<string, string> = { encrypted: '' }): NetworkSpec => ({
  name,
  driver: 'overlay',
  scope: 'global',
  ipv6: false,
  internal: false,
  icc: true,
  mtu: 1500,
  options,
});

interface Host {
  name: string;
  cluster: Cluster;
  /** What it acknowledged last, per network: the tags it receives with, the one it sends with. */
  acked: Map<string, { tags: number[]; primary: number }>;
  /** Stops acknowledging (a host that hangs). */
  mute: boolean;
  logs: string[];
}

const open: Host[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.cluster.close();
});

type Kv = ReturnType<typeof memoryBuckets>;

/** Whether every host sends with a key each other host receives with; called on every ack. */
let broken: string[] = [];
function checkPairs(hosts: Host[], network: string): void {
  for (const a of hosts) {
    const sends = a.acked.get(network)?.primary;
    if (sends === undefined) continue;
    for (const b of hosts) {
      const takes = b.acked.get(network)?.tags;
      if (b !== a && takes && !takes.includes(sends)) broken.push(`${a.name} sends ${sends}, ${b.name} takes ${takes}`);
    }
  }
}

const all: Host[] = [];

async function host(name: string, kv: Kv, graceMs = 10_000): Promise<Host> {
  const store = new MemoryStore();
  const ipam = new Ipam({ store });
  await ipam.start();
  const h: Host = { name, cluster: undefined as never, acked: new Map(), mute: false, logs: [] };
  h.cluster = new Cluster({ hostId: name, servers: [], graceMs, store, ipam, log: (l) => h.logs.push(l), buckets: kv });
  await h.cluster.load();
  // As the overlay driver does (apply.ts): install what the keys say, then acknowledge them.
  const apply = (network: string) => {
    const net = { id: network } as NetworkRecord;
    const keys: NetworkKeys | undefined = h.cluster.networkKeys(net);
    if (!keys || h.mute) return;
    h.acked.set(network, { tags: keys.keys.map((k) => k.tag), primary: keys.primary });
    checkPairs(all, network);
    void h.cluster.ackKeys(net, keys);
  };
  h.cluster.start({
    network: (now) => now && apply(now.id),
    service: () => {},
    endpoint: () => {},
    own: () => [],
    keys: apply,
  });
  await h.cluster.resync();
  open.push(h);
  all.push(h);
  return h;
}

afterEach(() => {
  all.splice(0);
  broken = [];
});

const rec = (id: string) =>
  ({ id, spec: overlay('x'), device: 'x', subnet: '', created: '', state: 'ready' }) as NetworkRecord;
const until = async (ok: () => boolean, ms = 3000) => {
  for (const end = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > end) throw new Error('timed out');
  }
};

describe('the keys of an encrypted overlay', () => {
  it('come with the network, with its own VXLAN port; what is shown of them holds no key', async () => {
    const kv = memoryBuckets();
    const [a, b] = [await host('a', kv), await host('b', kv)];
    const n = await a.cluster.createNetwork(overlay('secret'), { gateway: false, vni: true, encrypted: true });
    expect(n.spec.options).toMatchObject({ vni: '4096', 'vxlan-port': '4800', encrypted: '' });
    const m = await b.cluster.createNetwork(overlay('other'), { gateway: false, vni: true, encrypted: true });
    expect(m.spec.options['vxlan-port']).toBe('4801');
    await until(() => b.acked.has(n.id) && a.acked.has(n.id));
    const keys = b.cluster.networkKeys(rec(n.id))!;
    expect(keys.keys.map((k) => k.key.length)).toEqual([32]);
    expect(a.cluster.networkKeys(rec(n.id))!.keys[0]!.key.equals(keys.keys[0]!.key)).toBe(true);
    const shown = JSON.stringify(a.cluster.keysStatus(rec(n.id)));
    expect(JSON.parse(shown)).toMatchObject({ tags: [1], primary: 1, rotating: false, everyMs: 12 * 3600_000 });
    for (const k of [keys.keys[0]!.key.toString('base64'), keys.keys[0]!.key.toString('hex')]) {
      expect(shown).not.toContain(k);
      expect([...a.logs, ...b.logs].join('\n')).not.toContain(k);
    }
    // A port an encrypted network holds is nobody else's, clear or encrypted.
    await expect(
      b.cluster.createNetwork(overlay('third', { encrypted: '', 'vxlan-port': '4800' }), {
        gateway: false,
        vni: true,
        encrypted: true,
      }),
    ).rejects.toMatchObject({ code: 'IPAM_ID_IN_USE' });
    await expect(
      b.cluster.createNetwork(overlay('clear', { 'vxlan-port': '4801' }), { gateway: false, vni: true }),
    ).rejects.toMatchObject({ code: 'SIDECAR_INVALID_ARGUMENT' });
    // Nothing of the refused ones stays claimed: the next gets the next VNI.
    const c = await b.cluster.createNetwork(overlay('clear'), { gateway: false, vni: true });
    expect(c.spec.options.vni).toBe('4098');
  });

  it('rotate in three steps, each once every live host has the one before: no host sends a key another cannot take', async () => {
    const kv = memoryBuckets();
    const hosts = [await host('h1', kv), await host('h2', kv), await host('h3', kv)];
    const n = await hosts[1]!.cluster.createNetwork(overlay('secret'), { gateway: false, vni: true, encrypted: true });
    await until(() => hosts.every((h) => h.acked.get(n.id)?.primary === 1));
    const first = hosts[0]!.cluster.networkKeys(rec(n.id))!.keys[0]!.key;
    // Asked on a host that does not drive the rotations (h1, the first by id, does).
    const r = await hosts[2]!.cluster.rotateKeys(rec(n.id));
    expect(r.tag).toBe(2);
    for (const h of hosts) {
      expect(h.acked.get(n.id)).toEqual({ tags: [2], primary: 2 });
      const keys = h.cluster.networkKeys(rec(n.id))!;
      expect(keys.keys.map((k) => k.tag)).toEqual([2]);
      expect(keys.keys[0]!.key.equals(first)).toBe(false);
    }
    expect(broken).toEqual([]);
    expect(hosts[0]!.cluster.keysStatus(rec(n.id))).toMatchObject({ tags: [2], primary: 2, rotating: false });
    // And again: each rotation a new key.
    expect((await hosts[0]!.cluster.rotateKeys(rec(n.id))).tag).toBe(3);
    expect(broken).toEqual([]);
  });

  it('a host that does not answer holds a rotation until it is gone; then the rest go on', async () => {
    const kv = memoryBuckets();
    const a = await host('a', kv, 600);
    const b = await host('b', kv, 600);
    const n = await a.cluster.createNetwork(overlay('secret'), { gateway: false, vni: true, encrypted: true });
    await until(() => b.acked.get(n.id)?.primary === 1);
    b.mute = true; // b keeps its acknowledgement of key 1 and says nothing more
    const rotation = a.cluster.rotateKeys(rec(n.id));
    await new Promise((r) => setTimeout(r, 300));
    // Step one made (a new key, not sent with yet); step two waits for b.
    expect(a.cluster.keysStatus(rec(n.id))).toMatchObject({ tags: [1, 2], primary: 1, rotating: true });
    expect(a.acked.get(n.id)).toEqual({ tags: [1, 2], primary: 1 });
    await b.cluster.close(); // b stops beating: gone after the grace (600 ms)
    const r = await rotation;
    expect(r.tag).toBe(2);
    expect(a.acked.get(n.id)).toEqual({ tags: [2], primary: 2 });
    expect(a.logs.some((l) => l.includes('host b is gone'))).toBe(true);
  });

  it('rotate when a host that held them is gone, and when a host lost its states', async () => {
    const kv = memoryBuckets();
    const [a, b] = [await host('a', kv, 600), await host('b', kv, 600)];
    const n = await a.cluster.createNetwork(overlay('secret'), { gateway: false, vni: true, encrypted: true });
    await until(() => b.acked.get(n.id)?.primary === 1);
    await b.cluster.close();
    await until(() => a.acked.get(n.id)?.primary === 2 && a.acked.get(n.id)?.tags.length === 1);
    // A host whose kernel lost the states (it made them from nothing) asks for new keys.
    await a.cluster.ackKeys(rec(n.id), a.cluster.networkKeys(rec(n.id))!, true);
    await until(() => a.acked.get(n.id)?.primary === 3 && a.acked.get(n.id)?.tags.length === 1);
    expect(a.logs.some((l) => l.includes('were lost here: rotating its keys'))).toBe(true);
  });

  it('rotate by themselves when the period is up, and go with the network', async () => {
    const kv = memoryBuckets();
    const [a, b] = [await host('a', kv), await host('b', kv)];
    const n = await a.cluster.createNetwork(overlay('secret', { encrypted: '', 'key-rotation': '1h' }), {
      gateway: false,
      vni: true,
      encrypted: true,
    });
    await until(() => b.acked.get(n.id)?.primary === 1);
    // The last rotation an hour and a second ago, as if the hosts had been running that long.
    const e = (await kv.keys.get(`net.${n.id}`))!;
    const old = JSON.parse(e.value);
    await kv.keys.update(e.key, JSON.stringify({ ...old, rotated: Date.now() - 3601_000 }), e.revision);
    await until(() => [a, b].every((h) => h.acked.get(n.id)?.primary === 2 && h.acked.get(n.id)?.tags.length === 1));
    expect(broken).toEqual([]);
    const netRec = { ...rec(n.id), spec: n.spec, subnet: n.subnet } as NetworkRecord;
    await a.cluster.removeNetwork(netRec);
    expect(kv.keys.entries()).toEqual([]);
    expect(kv.ipam.entries().map((x) => x.key)).toEqual([]);
  });

  it('a keys record a buggy peer writes is refused with one line; the keys stay as they were', async () => {
    const kv = memoryBuckets();
    const [a, b] = [await host('a', kv), await host('b', kv)];
    const n = await a.cluster.createNetwork(overlay('secret'), { gateway: false, vni: true, encrypted: true });
    await until(() => b.acked.get(n.id)?.primary === 1);
    const before = b.cluster.networkKeys(rec(n.id))!;
    const e = (await kv.keys.get(`net.${n.id}`))!;
    const bad = { ...JSON.parse(e.value), keys: [{ tag: 1, key: Buffer.alloc(16).toString('base64') }] };
    await kv.keys.update(e.key, JSON.stringify(bad), e.revision);
    expect(b.logs.filter((l) => l.includes(`ignored cnmd_keys net.${n.id}`))).toEqual([
      `cluster: ignored cnmd_keys net.${n.id}: a key is not 32 bytes`,
    ]);
    expect(b.cluster.networkKeys(rec(n.id))).toEqual(before);
    // An ack under another host's key is refused too.
    await kv.keys.create(`ack.${n.id}.c`, JSON.stringify({ v: 1, host: 'a', network: n.id, tags: [1], primary: 1 }));
    expect(a.logs.some((l) => l.includes(`ack.${n.id}.c: its network and host are not its key`))).toBe(true);
  });
});
