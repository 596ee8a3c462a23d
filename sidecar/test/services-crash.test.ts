// A service removed by a daemon that is killed half way (kill -9 at any moment, #16): what the
// store holds when it dies must never be a service whose VIP or mark IPAM no longer holds, since
// the restart keeps the service and IPAM would hand them out again (one address twice on the
// network, one fwmark for two services). The store here dies at a chosen write: that write and
// every later one fail, as they would if the process had died just before them.
import { Ipam, MemoryStore, type Store, type StoreOp, type StoreResult } from '@cnmd/ipam';
import { expect, it } from 'vitest';
import type { NetworkContext } from '../src/network/context.js';
import type { LbHooks } from '../src/network/hooks.js';
import type { NetworkRecord, ServiceRecord } from '../src/network/records.js';
import { Services } from '../src/network/services.js';
import type { ServiceSpec } from '../src/network/spec.js';
import { Records } from '../src/network/store.js';

class DyingStore implements Store {
  readonly inner = new MemoryStore();
  dieAt: ((op: StoreOp) => boolean) | undefined;
  #dead = false;

  list(prefix: string) {
    return this.inner.list(prefix);
  }

  commit(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    if (this.#dead || ops.some((op) => this.dieAt?.(op))) {
      this.#dead = true;
      return Promise.reject(new Error('killed'));
    }
    return this.inner.commit(ops);
  }

  close() {
    return this.inner.close();
  }
}

it.each([
  ['the record', (op: StoreOp) => op.op === 'delete' && op.key.startsWith('cnmd/svc/')],
  ['the mark', (op: StoreOp) => op.op === 'delete' && op.key.startsWith('id/mark/')],
  ['the VIP', (op: StoreOp) => op.op === 'delete' && op.key.startsWith('addr/')],
])('a service removal killed at the write of %s leaves no record whose VIP or mark is free', async (_, dieAt) => {
  const store = new DyingStore();
  const ipam = new Ipam({ store });
  await ipam.start();
  const pool = await ipam.requestPool({ subnet: '10.1.0.0/24' });
  const net = {
    id: 'n1',
    spec: { name: 'front', driver: 'bridge', scope: 'local', options: {} },
    pool4: pool.id,
    subnet: '10.1.0.0/24',
    state: 'ready',
  } as unknown as NetworkRecord;
  const ctx = {
    networks: { get: () => net, all: () => [net] },
    endpoints: { all: () => [] },
    ipam,
    firewall: { checkPorts: async () => {}, publish: async () => {}, unpublish: async () => {} },
    dns: { service: () => {} },
    cluster: undefined,
    network: () => net,
    driverOf: () => ({ capability: { lbSandbox: true } }),
    requestAddress: (n: NetworkRecord, req: object) => ipam.requestAddress(n.pool4, req),
    releaseAddress: async (n: NetworkRecord, a: string) => void (await ipam.releaseAddress(n.pool4, a)),
    logged: () => () => {},
  } as unknown as NetworkContext;
  const lb = { sync: async () => {}, remove: async () => {}, unhealthy: () => new Set() } as unknown as LbHooks;
  const services = new Services(ctx, new Records<ServiceRecord>(store, 'svc'), lb);
  await services.create({ name: 'web', network: 'front', mode: 'vip', ports: [], scheduler: 'rr' } as ServiceSpec);

  store.dieAt = dieAt;
  // The releases after the record's delete are logged, not thrown: the removal may still resolve.
  await services.remove('web').catch(() => {});

  // The restart: what the store held when the daemon died.
  const after = new Ipam({ store: store.inner });
  await after.start();
  const left = await new Records<ServiceRecord>(store.inner, 'svc').load();
  const held = after.addresses(pool.id).map((a) => a.address);
  for (const rec of left) {
    expect(held).toContain(rec.vip);
    await expect(after.requestId('mark', rec.mark)).rejects.toMatchObject({ code: 'IPAM_ID_IN_USE' });
  }
});
