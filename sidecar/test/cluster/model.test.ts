// A model test of the cluster's views (fast-check): hosts put and delete their endpoints, lose
// their connection (missing what happens meanwhile) and come back, restart with only their own
// store; at the end every host's view of the others' endpoints is what those hosts hold, and the
// bucket holds exactly every host's own.
import { Ipam, MemoryStore } from '@cnmd/ipam';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { Cluster } from '../../src/cluster/cluster.js';
import type { Bucket, Buckets, KvChange, KvWatch } from '../../src/cluster/kv.js';
import { memoryBuckets } from '../../src/cluster/memory-kv.js';
import type { EndpointRecord, NetworkRecord } from '../../src/network/records.js';

/** One host's way to a shared bucket, which the test cuts: calls fail, watches hear nothing. */
class Link implements Bucket {
  readonly name: string;
  readonly #inner: Bucket;
  cut = false;
  #watches = new Set<{ on: boolean }>();

  constructor(inner: Bucket) {
    this.#inner = inner;
    this.name = inner.name;
  }

  #check(): void {
    if (this.cut) throw Object.assign(new Error('cut'), { code: 'SIDECAR_CLUSTER_UNAVAILABLE' });
  }

  /** The connection broke: every watch stops hearing (a resync starts new ones). */
  breakWatches(): void {
    for (const w of this.#watches) w.on = false;
    this.#watches.clear();
  }

  async get(k: string) {
    this.#check();
    return this.#inner.get(k);
  }
  async create(k: string, v: string) {
    this.#check();
    return this.#inner.create(k, v);
  }
  async update(k: string, v: string, r: number) {
    this.#check();
    return this.#inner.update(k, v, r);
  }
  async delete(k: string, r?: number) {
    this.#check();
    return this.#inner.delete(k, r);
  }
  async watch(onChange: (c: KvChange) => void, onSnapshot: () => void): Promise<KvWatch> {
    this.#check();
    const w = { on: true };
    this.#watches.add(w);
    const inner = await this.#inner.watch((c) => w.on && onChange(c), onSnapshot);
    return {
      stop: () => {
        w.on = false;
        inner.stop();
      },
    };
  }
}

const NET = 'f'.repeat(64);
const net = { id: NET, spec: { scope: 'global' } } as NetworkRecord;
const ep = (i: number): EndpointRecord =>
  ({
    id: i.toString(16).padStart(64, '0'),
    containerId: 'c'.repeat(64),
    network: NET,
    aliases: [],
    name: `c${i}`,
  }) as unknown as EndpointRecord;

type Op =
  | { kind: 'attach' | 'detach'; host: number; ep: number }
  | { kind: 'cut' | 'restore' | 'restart'; host: number };

const ops = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constantFrom('attach', 'detach'), host: fc.nat(2), ep: fc.nat(1) }),
    fc.record({ kind: fc.constantFrom('cut', 'restore', 'restart'), host: fc.nat(2) }),
  ) as fc.Arbitrary<Op>,
  { minLength: 10, maxLength: 40, size: 'max' },
);

it('every host ends with the same view: the others hold what they have', async () => {
  await fc.assert(
    fc.asyncProperty(ops, async (steps) => {
      const shared = memoryBuckets();
      const hosts = await Promise.all(
        [0, 1, 2].map(async (i) => {
          const links = Object.fromEntries(
            (Object.keys(shared) as (keyof Buckets | 'all')[])
              .filter((k) => k !== 'all')
              .map((k) => [k, new Link(shared[k as keyof Buckets])]),
          ) as unknown as Buckets & Record<keyof Buckets, Link>;
          const store = new MemoryStore();
          const ipam = new Ipam({ store });
          await ipam.start();
          const h = {
            name: `h${i}`,
            links,
            store,
            ipam,
            own: new Map<string, EndpointRecord>(),
            seen: new Map<string, string>(),
            cluster: undefined as unknown as Cluster,
          };
          return h;
        }),
      );
      const boot = async (h: (typeof hosts)[number]) => {
        h.seen.clear();
        h.cluster = new Cluster({
          hostId: h.name,
          servers: [],
          graceMs: 60_000,
          store: h.store,
          ipam: h.ipam,
          log: () => {},
          buckets: h.links,
        });
        await h.cluster.load();
        h.cluster.start({
          network: () => {},
          service: () => {},
          endpoint: (now, old) => {
            if (old) h.seen.delete(old.id);
            if (now) h.seen.set(now.id, now.host);
          },
          own: () => [...h.own.values()],
        });
        await h.cluster.resync();
      };
      for (const h of hosts) await boot(h);
      const cut = (h: (typeof hosts)[number], on: boolean) => {
        for (const l of Object.values(h.links) as Link[]) {
          l.cut = on;
          if (on) l.breakWatches();
        }
      };
      for (const s of steps) {
        const h = hosts[s.host]!;
        if (s.kind === 'attach' || s.kind === 'detach') {
          const e = ep(s.ep * 3 + s.host); // each host its own endpoints
          if (s.kind === 'attach') h.own.set(e.id, e);
          else h.own.delete(e.id);
          h.cluster.publish(net, e, s.kind === 'attach');
        } else if (s.kind === 'cut') cut(h, true);
        else if (s.kind === 'restore') {
          cut(h, false);
          await h.cluster.resync();
        } else {
          await h.cluster.close();
          await boot(h);
        }
        await new Promise((r) => setImmediate(r));
      }
      for (const h of hosts) cut(h, false);
      for (const h of hosts) await h.cluster.resync();
      for (const h of hosts) await h.cluster.resync(); // the writes of the others' resyncs arrive
      const everyone = new Map(hosts.flatMap((h) => [...h.own.keys()].map((id) => [id, h.name] as const)));
      expect(new Set(shared.endpoints.entries().map((e) => e.key.split('.')[2]))).toEqual(new Set(everyone.keys()));
      for (const h of hosts) {
        const others = new Map([...everyone].filter(([, host]) => host !== h.name));
        expect(h.seen).toEqual(others);
      }
      for (const h of hosts) await h.cluster.close();
    }),
    { numRuns: 150 },
  );
});
