// Random sequences of pool and address requests and releases, checked against a model:
// no address is ever handed out twice, none is lost, and a restart from the store changes
// nothing.
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { Ipam, type IpamError, MemoryStore } from '../src/index.js';

const SUBNETS = ['10.0.0.0/28', '10.0.0.16/29', '10.0.0.0/27', 'fd00::/124', '10.0.0.32/30'];
/** Addresses each subnet can hand out: all but network, gateway and (IPv4) broadcast. */
const CAPACITY: Record<string, number> = {
  '10.0.0.0/28': 13,
  '10.0.0.16/29': 5,
  '10.0.0.0/27': 29,
  'fd00::/124': 14,
  '10.0.0.32/30': 1,
};

type Op =
  | { t: 'pool'; subnet: number }
  | { t: 'unpool'; pool: number }
  | { t: 'alloc'; pool: number; fixed: number | null }
  | { t: 'free'; pool: number; pick: number }
  | { t: 'restart' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('pool' as const), subnet: fc.nat(SUBNETS.length - 1) }), weight: 2 },
  { arbitrary: fc.record({ t: fc.constant('unpool' as const), pool: fc.nat(9) }), weight: 1 },
  {
    arbitrary: fc.record({ t: fc.constant('alloc' as const), pool: fc.nat(9), fixed: fc.option(fc.nat(31)) }),
    weight: 8,
  },
  { arbitrary: fc.record({ t: fc.constant('free' as const), pool: fc.nat(9), pick: fc.nat(31) }), weight: 5 },
  { arbitrary: fc.record({ t: fc.constant('restart' as const) }), weight: 1 },
);

function addressAt(subnet: string, offset: number): string {
  const [base] = subnet.split('/') as [string];
  if (base.includes(':')) return `fd00::${offset.toString(16)}`;
  const last = Number(base.split('.')[3]);
  return `10.0.0.${last + offset}`;
}

it('never hands out an address twice and never loses one', async () => {
  let handedOut = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 20, maxLength: 150, size: 'max' }), async (ops) => {
      const store = new MemoryStore();
      let ipam = new Ipam({ store });
      await ipam.start();
      const model = new Map<string, { subnet: string; held: Set<string> }>();
      const poolAt = (i: number) => [...model.keys()].sort()[i % Math.max(1, model.size)];

      for (const o of ops) {
        if (o.t === 'restart') {
          ipam = new Ipam({ store });
          await ipam.start();
        } else if (o.t === 'pool') {
          const subnet = SUBNETS[o.subnet]!;
          const p = await ipam.requestPool({ subnet }).catch((e: IpamError) => e.code);
          if (typeof p === 'string') expect(p).toBe('IPAM_POOL_OVERLAP');
          else model.set(p.id, { subnet, held: new Set() });
        } else if (o.t === 'unpool') {
          const id = poolAt(o.pool);
          if (!id) continue;
          const m = model.get(id)!;
          const r = await ipam.releasePool(id).catch((e: IpamError) => e.code);
          expect(r).toBe(m.held.size > 0 ? 'IPAM_POOL_IN_USE' : undefined);
          if (r === undefined) model.delete(id);
        } else if (o.t === 'alloc') {
          const id = poolAt(o.pool);
          if (!id) continue;
          const m = model.get(id)!;
          const address = o.fixed === null ? undefined : addressAt(m.subnet, o.fixed);
          const r = await ipam
            .requestAddress(id, address === undefined ? {} : { address })
            .catch((e: IpamError) => e.code);
          if (typeof r === 'string') {
            if (address !== undefined && m.held.has(address)) expect(r).toBe('IPAM_ADDRESS_IN_USE');
            else expect(r).toMatch(/^IPAM_(POOL_EXHAUSTED|ADDRESS_RESERVED|ADDRESS_OUT_OF_RANGE|ADDRESS_IN_USE)$/);
          } else {
            expect(m.held.has(r.address)).toBe(false);
            if (address !== undefined) expect(r.address).toBe(address);
            m.held.add(r.address);
            handedOut++;
          }
        } else {
          const id = poolAt(o.pool);
          if (!id) continue;
          const m = model.get(id)!;
          const held = [...m.held];
          const address = held.length > 0 ? held[o.pick % held.length]! : addressAt(m.subnet, o.pick % 4);
          const r = await ipam.releaseAddress(id, address).catch((e: IpamError) => e.code);
          if (m.held.has(address)) expect(r).toBe(true);
          else expect([false, 'IPAM_ADDRESS_RESERVED', 'IPAM_ADDRESS_OUT_OF_RANGE']).toContain(r);
          m.held.delete(address);
        }
      }

      // Nothing lost: what is left in each pool is exactly what the model says is free.
      for (const [id, m] of model) {
        expect(new Set(ipam.addresses(id).map((a) => a.address))).toEqual(m.held);
        const rest: string[] = [];
        for (;;) {
          const r = await ipam.requestAddress(id).catch(() => undefined);
          if (!r) break;
          rest.push(r.address);
        }
        for (const a of rest) expect(m.held.has(a)).toBe(false);
        expect(new Set(rest).size).toBe(rest.length);
        expect(ipam.pool(id)!.used).toBe(CAPACITY[m.subnet]);
        expect(m.held.size + rest.length).toBe(CAPACITY[m.subnet]);
      }
    }),
    { numRuns: 300 },
  );
  // The generator must exercise allocation, not only no-ops.
  expect(handedOut).toBeGreaterThan(2000);
}, 60_000); // 300 runs take ~2 s alone, ten times that on a machine busy with the privileged tests
