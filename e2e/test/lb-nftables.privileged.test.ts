// The nftables data plane for real: a LoadBalancer in an LB sandbox balances a VIP over three
// backends (e2e/test/lb-lab.ts), seen from a client with curl, as IPVS NAT with SNAT would.
import { isLbError, type LbErrorCode, NftablesDataPlane, type ServiceSpec, type VirtualService } from '@cnmd/lb';
import { execIn } from '@cnmd/lb/internal';
import { describe, expect, it } from 'vitest';
import { test as netnsTest } from '../src/fixtures.js';
import { BACKENDS, LbLab, NETWORK } from './lb-lab.js';

const VIP = '10.123.0.100';
const VIP6 = '2001:db8:7b::100';
const http = (over: Partial<ServiceSpec> = {}): ServiceSpec => ({
  name: 'web',
  network: NETWORK,
  vip: VIP,
  ports: [{ proto: 'tcp', port: 80, targetPort: 8080 }],
  backends: BACKENDS.map((b) => ({ address: b.v4 })),
  ...over,
});

const count = (xs: string[]) =>
  Object.fromEntries(BACKENDS.map((b) => [b.name, xs.filter((x) => x === b.name).length]));

async function codeOf(p: Promise<unknown>): Promise<LbErrorCode | undefined> {
  try {
    await p;
  } catch (e) {
    if (isLbError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe.sequential('the nftables data plane', () => {
  it('rr: new connections to the VIP reach the three backends in turn', async () => {
    const lab = await LbLab.forTest();
    await lab.vip(VIP);
    const lb = lab.balancer();
    await lb.addService(http());
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push(await lab.curl(`http://${VIP}/`));
    expect(new Set(seen.slice(0, 3))).toEqual(new Set(['b1', 'b2', 'b3']));
    expect(seen.slice(3)).toEqual(seen.slice(0, 3));
    // SNAT: the backends see the LB sandbox, so replies return through it.
    expect(await lab.table()).toContain('masquerade');
  });

  it('wrr: weights are honoured', async () => {
    const lab = await LbLab.forTest();
    await lab.vip(VIP);
    const lb = lab.balancer();
    await lb.addService(
      http({
        scheduler: 'wrr',
        backends: [
          { address: BACKENDS[0]!.v4, weight: 2 },
          { address: BACKENDS[1]!.v4, weight: 1 },
          { address: BACKENDS[2]!.v4, weight: 1 },
        ],
      }),
    );
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) seen.push(await lab.curl(`http://${VIP}/`));
    expect(count(seen)).toEqual({ b1: 4, b2: 2, b3: 2 });
    // A weight changed on the fly is one small transaction, and in force at once.
    await lb.setBackends('web', [
      { address: BACKENDS[0]!.v4, weight: 0 },
      { address: BACKENDS[1]!.v4, weight: 3 },
      { address: BACKENDS[2]!.v4, weight: 1 },
    ]);
    const after: string[] = [];
    for (let i = 0; i < 8; i++) after.push(await lab.curl(`http://${VIP}/`));
    expect(count(after)).toEqual({ b1: 0, b2: 6, b3: 2 });
  });

  it('drain: a removed backend gets no new connection, an established one finishes, then it is gone', async () => {
    const lab = await LbLab.forTest();
    await lab.vip(VIP);
    const lb = lab.balancer({ drainMs: 60_000 });
    await lb.addService(http());
    const kept = lab.keepAlive(VIP, 80);
    const [port, first] = await kept.get('/');
    expect(['b1', 'b2', 'b3']).toContain(first);
    const drained = BACKENDS.find((b) => b.name === first)!;
    // rr: the next two new connections go to the two others, the third to the same backend,
    // which answers it slowly: a second established connection, with its answer pending.
    const others = [await lab.curl(`http://${VIP}/`), await lab.curl(`http://${VIP}/`)];
    expect(others).not.toContain(first);
    const slow = lab.curl(`http://${VIP}/?ms=3000`, 8000);
    await new Promise((r) => setTimeout(r, 500));
    await lb.removeBackend('web', drained.v4);
    const fresh: string[] = [];
    for (let i = 0; i < 6; i++) fresh.push(await lab.curl(`http://${VIP}/`));
    expect(fresh).not.toContain(first);
    expect(new Set(fresh).size).toBe(2);
    // The established connection still reaches the drained backend.
    expect(await kept.get('/')).toEqual([port, first]);
    expect(await slow).toBe(first);
    expect(lb.service('web')?.backends).toContainEqual({ address: drained.v4, weight: 0 });
    // After the grace period (here cut short by a removal without one) it is gone.
    await lb.removeBackend('web', drained.v4, { graceMs: 0 });
    expect(lb.service('web')?.backends.map((b) => b.address)).not.toContain(drained.v4);
    expect(await lab.table()).not.toContain(drained.v4);
  });

  it('UDP through the VIP; stale conntrack entries go with a removed backend and a removed service', async () => {
    const lab = await LbLab.forTest();
    await lab.vip(VIP);
    const lb = lab.balancer();
    await lb.addService(http({ name: 'dns', ports: [{ proto: 'udp', port: 53, targetPort: 5353 }] }));
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) answers.push(await lab.udp(VIP, 53, 40000 + i));
    expect(count(answers)).toEqual({ b1: 2, b2: 2, b3: 2 });
    expect(await lab.udpFlows(VIP)).toHaveLength(6);
    // A backend removed: its flows are deleted (moby/moby#36878), the others stay.
    await lb.removeBackend('dns', BACKENDS[0]!.v4, { graceMs: 0 });
    const left = await lab.udpFlows(VIP);
    expect(left).toHaveLength(4);
    expect(left.join('\n')).not.toContain(`src=${BACKENDS[0]!.v4} `);
    // The service removed: no flow to its VIP is left.
    await lb.removeService('dns');
    expect(await lab.udpFlows(VIP)).toEqual([]);
    expect(await lab.udp(VIP, 53, 40100)).toBe('');
  });

  it('an IPv6 VIP balances over IPv6 backends', async () => {
    const lab = await LbLab.forTest();
    await lab.vip(VIP6);
    const lb = lab.balancer();
    await lb.addService(http({ name: 'web6', vip: VIP6, backends: BACKENDS.map((b) => ({ address: b.v6 })) }));
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push(await lab.curl(`http://[${VIP6}]/`));
    expect(count(seen)).toEqual({ b1: 2, b2: 2, b3: 2 });
    expect(await lab.udp(VIP6, 80, 40200)).toBe(''); // only tcp/80 is balanced
  });

  it('bad input gets a clear code and programs nothing', async () => {
    const lab = await LbLab.forTest();
    await lab.vip(VIP);
    const lb = lab.balancer();
    await lb.addService(http());
    const before = await lab.table();
    expect(await codeOf(lb.addService(http({ name: 'x', vip: '10.123.0.101', scheduler: 'fast' as never })))).toBe(
      'LB_INVALID_SCHEDULER',
    );
    expect(await codeOf(lb.addService(http({ name: 'x', vip: '10.124.0.100' })))).toBe('LB_VIP_OUT_OF_SUBNET');
    expect(await codeOf(lb.addService(http({ name: 'x' })))).toBe('LB_PORT_IN_USE');
    expect(
      await codeOf(lb.addService(http({ name: 'x', vip: '10.123.0.101', backends: [{ address: '10.9.0.2' }] }))),
    ).toBe('LB_BACKEND_WRONG_NETWORK');
    expect(await codeOf(lb.addBackend('web', { address: '10.123.0.20', network: 'back' }))).toBe(
      'LB_BACKEND_WRONG_NETWORK',
    );
    expect(await lab.table()).toBe(before);
    expect(lb.services().map((s) => s.name)).toEqual(['web']);
    expect(await lab.curl(`http://${VIP}/`)).toMatch(/^b[123]$/);
  });

  it('a restarted data plane resyncs by difference and removes everything on reset', async () => {
    const lab = await LbLab.forTest();
    await lab.vip(VIP);
    const lb = lab.balancer();
    await lb.addService(http({ mark: 300 }));
    const { NftablesDataPlane } = await import('@cnmd/lb');
    const again = new NftablesDataPlane({ netns: lab.lbns.name });
    try {
      expect(await again.read()).toEqual([
        {
          mark: 300,
          vip: VIP,
          ports: [{ proto: 'tcp', port: 80, targetPort: 8080 }],
          scheduler: 'rr',
          backends: BACKENDS.map((b) => ({ address: b.v4, weight: 1 })),
        },
      ]);
      expect(await again.apply(lb.desired())).toEqual({ added: 0, changed: 0, removed: 0 });
      await again.reset();
      expect(await lab.table()).toBe('');
    } finally {
      await again.close();
    }
  });
});

describe('a transaction nft refuses', () => {
  // A backend of the other family than its VIP: the LoadBalancer refuses it before, but the data
  // plane takes plain VirtualServices, and nft is the last word.
  const bad: VirtualService = {
    mark: 257,
    vip: '10.123.0.101',
    ports: [],
    scheduler: 'rr',
    backends: [{ address: '2001:db8:7b::11', weight: 1 }],
  };
  const good: VirtualService = { ...bad, backends: [{ address: '10.123.0.11', weight: 1 }] };

  netnsTest.for([['the nft -i session'], ['exec']])(
    'through %s is LB_NFT and changes nothing',
    async ([via], { netns }) => {
      const dp = new NftablesDataPlane(via === 'exec' ? { exec: execIn(netns.name) } : { netns: netns.name });
      try {
        await dp.apply([good]);
        const before = await netns.exec('nft', ['list', 'table', 'inet', 'cnmd_lb']);
        expect(await codeOf(dp.apply([good, { ...bad, mark: 258, vip: '10.123.0.102' }]))).toBe('LB_NFT');
        expect(await netns.exec('nft', ['list', 'table', 'inet', 'cnmd_lb'])).toBe(before);
        // The data plane goes on from what the kernel holds.
        expect(await dp.apply([good, { ...good, mark: 258, vip: '10.123.0.102' }])).toMatchObject({ added: 3 }); // vips4, counts, slots4;
        expect((await dp.read()).map((vs) => vs.mark)).toEqual([257, 258]);
      } finally {
        await dp.close();
      }
    },
  );
});
