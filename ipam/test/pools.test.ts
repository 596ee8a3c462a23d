import { describe, expect, it } from 'vitest';
import { codeOf, newIpam } from './helpers.js';

describe('default pools', () => {
  it('hands out libnetwork local pools in order: 172.17-31/16, then 192.168/16 as /20s', async () => {
    const ipam = await newIpam();
    const subnets: string[] = [];
    for (let i = 0; i < 31; i++) subnets.push((await ipam.requestPool()).subnet);
    expect(subnets.slice(0, 3)).toEqual(['172.17.0.0/16', '172.18.0.0/16', '172.19.0.0/16']);
    expect(subnets[14]).toBe('172.31.0.0/16');
    expect(subnets.slice(15, 17)).toEqual(['192.168.0.0/20', '192.168.16.0/20']);
    expect(subnets[30]).toBe('192.168.240.0/20');
    expect(await codeOf(ipam.requestPool())).toBe('IPAM_NO_AVAILABLE_POOL');
  });

  it('gives the global space 10.0.0.0/8 as /24s', async () => {
    const ipam = await newIpam();
    const a = await ipam.requestPool({ space: 'global' });
    const b = await ipam.requestPool({ space: 'global' });
    expect([a.subnet, b.subnet]).toEqual(['10.0.0.0/24', '10.0.1.0/24']);
    expect(a.id).not.toBe(b.id);
  });

  it('skips subnets in use and subnets to avoid, and reuses a released one', async () => {
    const ipam = await newIpam();
    await ipam.requestPool({ subnet: '172.17.5.0/24' });
    const avoid = ['172.18.0.0/15'];
    expect((await ipam.requestPool({ avoid })).subnet).toBe('172.20.0.0/16');
    const b = await ipam.requestPool();
    expect(b.subnet).toBe('172.18.0.0/16');
    await ipam.releasePool(b.id);
    expect((await ipam.requestPool()).subnet).toBe('172.18.0.0/16');
  });

  it('takes custom default pools (Docker default-address-pools)', async () => {
    const ipam = await newIpam({ localPools: [{ base: '10.200.0.0/22', size: 24 }] });
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await ipam.requestPool()).subnet);
    expect(got).toEqual(['10.200.0.0/24', '10.200.1.0/24', '10.200.2.0/24', '10.200.3.0/24']);
    expect(await codeOf(ipam.requestPool())).toBe('IPAM_NO_AVAILABLE_POOL');
  });

  it('gives IPv6 /64s without a bitmap the size of a /64', async () => {
    const ipam = await newIpam();
    const a = await ipam.requestPool({ family: 6 });
    const b = await ipam.requestPool({ family: 6 });
    expect([a.subnet, b.subnet]).toEqual(['fdcc::/64', 'fdcc:0:0:1::/64']);
    expect(a.gateway).toBe('fdcc::1');
    expect((await ipam.requestAddress(a.id)).address).toBe('fdcc::2');
  });

  it.each([
    [{ localPools: [{ base: '10.0.0.0/8', size: 4 }] }],
    [{ localPools: [{ base: '10.0.0.1/8', size: 16 }] }],
    [{ vniRange: [0, 10] as [number, number] }],
    [{ markRange: [300, 200] as [number, number] }],
  ])('refuses bad options %j', async (opts) => {
    expect(await codeOf(() => newIpam(opts))).toMatch(/^IPAM_INVALID_(OPTION|CIDR)$/);
  });
});

describe('given subnets', () => {
  it('refuses an overlap and names the pool it overlaps', async () => {
    const ipam = await newIpam();
    await ipam.requestPool({ subnet: '10.1.0.0/16' });
    const err = await ipam.requestPool({ subnet: '10.1.128.0/24' }).catch((e) => e);
    expect(err.code).toBe('IPAM_POOL_OVERLAP');
    expect(err.message).toContain('10.1.0.0/16');
    expect(await codeOf(ipam.requestPool({ subnet: '10.0.0.0/8' }))).toBe('IPAM_POOL_OVERLAP');
    // Another address space is another namespace of subnets.
    expect((await ipam.requestPool({ subnet: '10.1.0.0/16', space: 'global' })).id).toBe('global/10.1.0.0/16');
  });

  it.each([
    [{ subnet: '10.1.2.3/16' }, 'IPAM_INVALID_CIDR'],
    [{ subnet: '10.1.0.0/16', ipRange: '10.2.0.0/24' }, 'IPAM_INVALID_RANGE'],
    [{ subnet: '10.1.0.0/16', ipRange: 'fd00::/64' }, 'IPAM_INVALID_RANGE'],
    [{ subnet: '10.1.0.0/16', gateway: '10.2.0.1' }, 'IPAM_ADDRESS_OUT_OF_RANGE'],
    [{ subnet: '10.1.0.0/16', gateway: 'bogus' }, 'IPAM_INVALID_ADDRESS'],
    [{ subnet: '10.1.0.0/16', gateway: '10.1.0.0' }, 'IPAM_ADDRESS_RESERVED'],
    [{ subnet: '10.1.0.0/16', auxAddresses: { r: '10.1.0.1' } }, 'IPAM_ADDRESS_RESERVED'],
    [{ subnet: '10.1.0.0/16', auxAddresses: { r: '10.9.0.1' } }, 'IPAM_ADDRESS_OUT_OF_RANGE'],
    [{ subnet: 'fd00::/64', macs: 'ip-derived' as const }, 'IPAM_INVALID_OPTION'],
    [{ subnet: '10.1.0.0/16', macs: 'sequential' as never }, 'IPAM_INVALID_OPTION'],
    [{ space: 'cluster' as never }, 'IPAM_INVALID_OPTION'],
    [{ family: 5 as never }, 'IPAM_INVALID_OPTION'],
  ])('refuses %j with %s and changes nothing', async (req, code) => {
    const ipam = await newIpam();
    expect(await codeOf(ipam.requestPool(req))).toBe(code);
    expect(ipam.pools()).toEqual([]);
  });

  it('reserves the gateway (first usable by default), aux addresses, network and broadcast', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/29', auxAddresses: { router: '10.1.0.3' } });
    expect(p.gateway).toBe('10.1.0.1');
    const got = [];
    for (;;) {
      const a = await ipam.requestAddress(p.id).catch(() => undefined);
      if (!a) break;
      got.push(a.address);
    }
    expect(got).toEqual(['10.1.0.2', '10.1.0.4', '10.1.0.5', '10.1.0.6']);
  });

  it('takes a given gateway, or none', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/30', gateway: '10.1.0.2' });
    expect((await ipam.requestAddress(p.id)).address).toBe('10.1.0.1');
    const q = await ipam.requestPool({ subnet: '10.2.0.0/30', gateway: false });
    expect(q.gateway).toBe(false);
    expect((await ipam.requestAddress(q.id)).address).toBe('10.2.0.1');
    expect((await ipam.requestAddress(q.id)).address).toBe('10.2.0.2');
  });

  it('hands out both addresses of a /31 (RFC 3021) and the one of a /32', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/31' });
    expect(p.gateway).toBe(false);
    expect([(await ipam.requestAddress(p.id)).address, (await ipam.requestAddress(p.id)).address]).toEqual([
      '10.1.0.0',
      '10.1.0.1',
    ]);
    const q = await ipam.requestPool({ subnet: '10.2.0.7/32' });
    expect((await ipam.requestAddress(q.id)).address).toBe('10.2.0.7');
  });

  it('draws dynamic addresses from the ip-range only; given ones anywhere in the subnet', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/16', ipRange: '10.1.5.0/30' });
    expect(p.gateway).toBe('10.1.0.1');
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await ipam.requestAddress(p.id)).address);
    expect(got).toEqual(['10.1.5.0', '10.1.5.1', '10.1.5.2', '10.1.5.3']);
    expect(await codeOf(ipam.requestAddress(p.id))).toBe('IPAM_POOL_EXHAUSTED');
    expect((await ipam.requestAddress(p.id, { address: '10.1.9.9' })).address).toBe('10.1.9.9');
  });

  it('refuses to release a pool that has addresses in use, and an unknown pool', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/24' });
    const a = await ipam.requestAddress(p.id);
    expect(await codeOf(ipam.releasePool(p.id))).toBe('IPAM_POOL_IN_USE');
    await ipam.releaseAddress(p.id, a.address);
    await ipam.releasePool(p.id);
    expect(ipam.pool(p.id)).toBeUndefined();
    expect(await codeOf(ipam.releasePool(p.id))).toBe('IPAM_POOL_NOT_FOUND');
    expect(await codeOf(ipam.requestAddress(p.id))).toBe('IPAM_POOL_NOT_FOUND');
  });

  it('never gives one subnet to two concurrent requests', async () => {
    const ipam = await newIpam();
    const pools = await Promise.all(Array.from({ length: 10 }, () => ipam.requestPool()));
    expect(new Set(pools.map((p) => p.subnet)).size).toBe(10);
  });
});
