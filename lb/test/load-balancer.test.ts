import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Conntrack } from '../src/conntrack.js';
import { MemoryDataPlane } from '../src/dataplanes/memory.js';
import type { LbSyncEvent } from '../src/diagnostics.js';
import { isLbError, type LbErrorCode } from '../src/errors.js';
import { LoadBalancer } from '../src/load-balancer.js';
import type { ServiceSpec } from '../src/service.js';
import { FakeClock } from './fake-clock.js';

const net = { name: 'front', subnets: ['10.0.1.0/24', 'fd00:1::/64'] };
const web = (over: Partial<ServiceSpec> = {}): ServiceSpec => ({
  name: 'web',
  network: net,
  vip: '10.0.1.10',
  ports: [{ proto: 'udp', port: 53 }],
  ...over,
});

async function code(p: Promise<unknown>): Promise<LbErrorCode | undefined> {
  try {
    await p;
  } catch (e) {
    if (isLbError(e)) return e.code;
    throw e;
  }
  return undefined;
}

let dp: MemoryDataPlane;
let clock: FakeClock;
let flushed: string[];
let lb: LoadBalancer;

beforeEach(() => {
  dp = new MemoryDataPlane();
  clock = new FakeClock();
  flushed = [];
  const conntrack: Conntrack = {
    deleteUdp: async (vip, backend) => {
      flushed.push(`${vip}>${backend}`);
      return true;
    },
  };
  lb = new LoadBalancer({ dataplane: dp, clock, conntrack, drainMs: 1000 });
});

afterEach(async () => {
  await lb.close();
});

describe('services', () => {
  it('gives marks from 256 and programs only VIP services', async () => {
    const a = await lb.addService(web({ backends: [{ address: '10.0.1.2' }] }));
    const b = await lb.addService(web({ name: 'api', vip: 'fd00:1::10' }));
    await lb.addService({ name: 'db', network: net, endpointMode: 'dnsrr' });
    expect([a.mark, b.mark]).toEqual([256, 257]);
    expect((await dp.read()).map((vs) => vs.vip)).toEqual(['10.0.1.10', 'fd00:1::10']);
    await lb.removeService('web');
    expect((await dp.read()).map((vs) => vs.mark)).toEqual([257]);
    expect(flushed).toEqual(['10.0.1.10>10.0.1.2']);
    expect((await lb.addService(web({ vip: '10.0.1.11' }))).mark).toBe(256);
  });

  it.each<[string, ServiceSpec, LbErrorCode]>([
    ['a taken name', web({ vip: '10.0.1.11' }), 'LB_SERVICE_EXISTS'],
    ['a taken port', web({ name: 'other' }), 'LB_PORT_IN_USE'],
    ['every port of a taken VIP', web({ name: 'other', ports: 'all' }), 'LB_PORT_IN_USE'],
    ['a taken mark', web({ name: 'other', vip: '10.0.1.11', mark: 256 }), 'LB_MARK_IN_USE'],
    ['an unknown scheduler', web({ name: 'x', vip: '10.0.1.12', scheduler: 'fast' as never }), 'LB_INVALID_SCHEDULER'],
  ])('refuses %s and programs nothing', async (_, spec, want) => {
    await lb.addService(web());
    const before = dp.applied.length;
    expect(await code(lb.addService(spec))).toBe(want);
    expect(dp.applied.length).toBe(before);
    expect(lb.services().map((s) => s.name)).toEqual(['web']);
  });

  it('keeps its state when the data plane refuses a change', async () => {
    await lb.addService(web());
    dp.failNext = new Error('kernel says no');
    expect(await code(lb.addBackend('web', { address: '10.0.1.2' }))).toBe('LB_DATAPLANE');
    expect(lb.service('web')?.backends).toEqual([]);
    await lb.addBackend('web', { address: '10.0.1.3' });
    expect((await dp.read())[0]?.backends).toEqual([{ address: '10.0.1.3', weight: 1 }]);
  });

  it('a VIP port and a mark freed by a removal are free again; what it sends follows every change', async () => {
    await lb.addService(web());
    await lb.addService(web({ name: 'api', vip: '10.0.1.11' }));
    await lb.addService({ name: 'db', network: net, endpointMode: 'dnsrr' });
    expect(await code(lb.addService(web({ name: 'web2' })))).toBe('LB_PORT_IN_USE');
    await lb.removeService('web');
    expect((await lb.addService(web({ name: 'web2' }))).mark).toBe(256);
    expect(await code(lb.addService(web({ name: 'web3', vip: '10.0.1.12', mark: 257 })))).toBe('LB_MARK_IN_USE');
    await lb.addBackend('api', { address: '10.0.1.5' });
    await lb.removeService('db');
    await lb.addBackend('web2', { address: '10.0.1.6' });
    dp.failNext = new Error('kernel says no');
    expect(await code(lb.removeService('api'))).toBe('LB_DATAPLANE');
    await lb.removeBackend('web2', '10.0.1.6', { graceMs: 0 });
    const held = await dp.read();
    expect(lb.desired().sort((a, b) => a.mark - b.mark)).toEqual(held);
    expect(held.map((vs) => [vs.mark, vs.vip, vs.backends.length])).toEqual([
      [256, '10.0.1.10', 0],
      [257, '10.0.1.11', 1],
    ]);
  });

  it('names a missing service or backend', async () => {
    expect(await code(lb.removeService('nope'))).toBe('LB_SERVICE_NOT_FOUND');
    await lb.addService(web());
    expect(await code(lb.removeBackend('web', '10.0.1.9'))).toBe('LB_BACKEND_NOT_FOUND');
    expect(await code(lb.addBackend('web', { address: '10.0.9.9' }))).toBe('LB_BACKEND_WRONG_NETWORK');
  });
});

describe('drain', () => {
  beforeEach(async () => {
    await lb.addService(web({ backends: [{ address: '10.0.1.2' }, { address: '10.0.1.3', weight: 2 }] }));
  });

  it('sets weight 0 at once, removes after the grace period, then deletes UDP flows', async () => {
    await lb.removeBackend('web', '10.0.1.3');
    expect((await dp.read())[0]?.backends).toEqual([
      { address: '10.0.1.2', weight: 1 },
      { address: '10.0.1.3', weight: 0 },
    ]);
    expect(flushed).toEqual([]);
    clock.advance(999);
    await lb.idle();
    expect((await dp.read())[0]?.backends).toHaveLength(2);
    clock.advance(1);
    await lb.idle();
    expect((await dp.read())[0]?.backends).toEqual([{ address: '10.0.1.2', weight: 1 }]);
    expect(flushed).toEqual(['10.0.1.10>10.0.1.3']);
  });

  it('is cancelled when the backend comes back', async () => {
    await lb.removeBackend('web', '10.0.1.3');
    await lb.addBackend('web', { address: '10.0.1.3', weight: 2 });
    clock.advance(5000);
    await lb.idle();
    expect((await dp.read())[0]?.backends).toContainEqual({ address: '10.0.1.3', weight: 2 });
    expect(flushed).toEqual([]);
  });

  it('removes at once with a grace of 0', async () => {
    await lb.removeBackend('web', '10.0.1.2', { graceMs: 0 });
    expect((await dp.read())[0]?.backends).toEqual([{ address: '10.0.1.3', weight: 2 }]);
    expect(flushed).toEqual(['10.0.1.10>10.0.1.2']);
  });

  it('drains what setBackends leaves out', async () => {
    await lb.setBackends('web', [{ address: '10.0.1.3' }, { address: '10.0.1.4' }]);
    expect((await dp.read())[0]?.backends).toEqual([
      { address: '10.0.1.3', weight: 1 },
      { address: '10.0.1.4', weight: 1 },
      { address: '10.0.1.2', weight: 0 },
    ]);
    clock.advance(1000);
    await lb.idle();
    expect((await dp.read())[0]?.backends.map((b) => b.address)).toEqual(['10.0.1.3', '10.0.1.4']);
  });

  it('reports a drain the data plane refused to onError; the backend stays drained', async () => {
    const errors: string[] = [];
    await lb.close();
    lb = new LoadBalancer({
      dataplane: dp,
      clock,
      drainMs: 1000,
      onError: (op, e) => errors.push(`${op} ${(e as { code?: string }).code}`),
    });
    await lb.addService(web({ backends: [{ address: '10.0.1.2' }, { address: '10.0.1.3' }] }));
    await lb.removeBackend('web', '10.0.1.3');
    dp.failNext = new Error('refused');
    clock.advance(1000);
    await lb.idle();
    expect(errors).toEqual(['drain-expired LB_DATAPLANE']);
    expect((await dp.read())[0]?.backends).toContainEqual({ address: '10.0.1.3', weight: 0 });
  });

  it('does not touch conntrack for a TCP-only service', async () => {
    await lb.addService(
      web({ name: 'tcp', vip: '10.0.1.20', ports: [{ port: 80 }], backends: [{ address: '10.0.1.5' }] }),
    );
    await lb.removeBackend('tcp', '10.0.1.5', { graceMs: 0 });
    expect(flushed).toEqual([]);
  });
});

it('health checks take a failing backend out of the rotation and bring it back', async () => {
  const down = new Set<string>();
  lb = new LoadBalancer({ dataplane: dp, clock, probe: async (a) => !down.has(a) });
  await lb.addService(
    web({
      ports: [{ port: 80 }],
      backends: [{ address: '10.0.1.2' }, { address: '10.0.1.3' }],
      health: { type: 'tcp', intervalMs: 100, unhealthyThreshold: 2, healthyThreshold: 1 },
    }),
  );
  const weights = async () => (await dp.read())[0]?.backends.map((b) => b.weight);
  const tick = async () => {
    clock.advance(100);
    await new Promise((r) => setImmediate(r));
    await lb.idle();
  };
  down.add('10.0.1.3');
  await tick();
  expect(await weights()).toEqual([1, 1]);
  await tick();
  expect(await weights()).toEqual([1, 0]);
  down.clear();
  await tick();
  expect(await weights()).toEqual([1, 1]);
});

it('tells onHealth, and unhealthy() names, what health checks decide; dnsrr services too', async () => {
  const down = new Set<string>(['10.0.1.3']);
  const told: string[] = [];
  lb = new LoadBalancer({
    dataplane: dp,
    clock,
    probe: async (a) => !down.has(a),
    onHealth: (s, a, ok) => told.push(`${s} ${a} ${ok}`),
  });
  const health = { type: 'tcp', port: 80, intervalMs: 100, unhealthyThreshold: 1, healthyThreshold: 1 } as const;
  await lb.addService(
    web({ ports: [{ port: 80 }], backends: [{ address: '10.0.1.2' }, { address: '10.0.1.3' }], health }),
  );
  await lb.addService({
    name: 'rr',
    network: net,
    endpointMode: 'dnsrr',
    backends: [{ address: '10.0.1.3' }, { address: 'fd00:1::3' }],
    health,
  });
  clock.advance(100);
  await new Promise((r) => setImmediate(r));
  await lb.idle();
  expect(told.sort()).toEqual(['rr 10.0.1.3 false', 'web 10.0.1.3 false']);
  expect(lb.unhealthy('web')).toEqual(['10.0.1.3']);
  expect(lb.unhealthy('rr')).toEqual(['10.0.1.3']);
  // Gone without a drain, it is forgotten: back later, it starts healthy.
  await lb.setBackends('web', [{ address: '10.0.1.2' }], { drain: false });
  expect(lb.unhealthy('web')).toEqual([]);
});

it('publishes every sync on cnmd:lb:sync', async () => {
  const events: LbSyncEvent[] = [];
  const on = (m: unknown) => events.push(m as LbSyncEvent);
  subscribe('cnmd:lb:sync', on);
  try {
    await lb.addService(web({ backends: [{ address: '10.0.1.2' }] }));
    await lb.addBackend('web', { address: '10.0.1.3' });
  } finally {
    unsubscribe('cnmd:lb:sync', on);
  }
  expect(events).toMatchObject([
    { op: 'addService', dataplane: 'memory', services: 1, backends: 1, added: 2 },
    { op: 'addBackend', services: 1, backends: 2, added: 1, changed: 0, removed: 0 },
  ]);
});

it('refuses changes once closed', async () => {
  await lb.close();
  await lb.close();
  expect(await code(lb.addService(web()))).toBe('LB_CLOSED');
});
