import { describe, expect, it } from 'vitest';
import { codeOf, newIpam } from './helpers.js';

describe('addresses', () => {
  it('continues after the last one handed out, so a released address is not reused at once', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/29' });
    const a = await ipam.requestAddress(p.id);
    const b = await ipam.requestAddress(p.id);
    expect([a.address, b.address]).toEqual(['10.1.0.2', '10.1.0.3']);
    expect(await ipam.releaseAddress(p.id, a.address)).toBe(true);
    const next = [];
    for (let i = 0; i < 4; i++) next.push((await ipam.requestAddress(p.id)).address);
    // .2 comes back only once the end of the pool is reached and allocation wraps.
    expect(next).toEqual(['10.1.0.4', '10.1.0.5', '10.1.0.6', '10.1.0.2']);
    expect(await codeOf(ipam.requestAddress(p.id))).toBe('IPAM_POOL_EXHAUSTED');
  });

  it('hands out addresses within a block of the subnet, and counts what a block holds', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/24' });
    const got = [];
    for (let i = 0; i < 2; i++) got.push((await ipam.requestAddress(p.id, { within: '10.1.0.0/30' })).address);
    // .0 is the network's and .1 its gateway: a block keeps the subnet's reserved addresses out.
    expect(got).toEqual(['10.1.0.2', '10.1.0.3']);
    expect(await codeOf(ipam.requestAddress(p.id, { within: '10.1.0.0/30' }))).toBe('IPAM_POOL_EXHAUSTED');
    expect(ipam.usedIn(p.id, '10.1.0.0/30')).toBe(2);
  });

  it('a full block is IPAM_POOL_EXHAUSTED while the rest of the subnet is free; usedIn counts it', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/24' });
    expect((await ipam.requestAddress(p.id, { within: '10.1.0.64/31' })).address).toBe('10.1.0.64');
    expect((await ipam.requestAddress(p.id, { within: '10.1.0.64/31' })).address).toBe('10.1.0.65');
    expect(await codeOf(ipam.requestAddress(p.id, { within: '10.1.0.64/31' }))).toBe('IPAM_POOL_EXHAUSTED');
    expect(ipam.usedIn(p.id, '10.1.0.64/26')).toBe(2);
    expect(ipam.usedIn(p.id, '10.1.0.0/26')).toBe(0);
    expect(await codeOf(ipam.requestAddress(p.id, { within: '10.2.0.0/26' }))).toBe('IPAM_INVALID_RANGE');
    // the pool's own allocation goes on after the newest address, as ever
    expect((await ipam.requestAddress(p.id)).address).toBe('10.1.0.66');
  });

  it('takes a given address once; the second request for it fails', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/24' });
    expect(await ipam.requestAddress(p.id, { address: '10.1.0.77' })).toEqual({ address: '10.1.0.77' });
    expect(await codeOf(ipam.requestAddress(p.id, { address: '10.1.0.77' }))).toBe('IPAM_ADDRESS_IN_USE');
    expect(ipam.addresses(p.id)).toEqual([{ address: '10.1.0.77' }]);
  });

  it.each([
    ['10.2.0.1', 'IPAM_ADDRESS_OUT_OF_RANGE'],
    ['fd00::1', 'IPAM_ADDRESS_OUT_OF_RANGE'],
    ['10.1.0.0', 'IPAM_ADDRESS_RESERVED'],
    ['10.1.0.255', 'IPAM_ADDRESS_RESERVED'],
    ['10.1.0.1', 'IPAM_ADDRESS_RESERVED'],
    ['10.1.0.300', 'IPAM_INVALID_ADDRESS'],
    ['', 'IPAM_INVALID_ADDRESS'],
  ])('refuses the given address %s with %s, handing out nothing', async (address, code) => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/24' });
    expect(await codeOf(ipam.requestAddress(p.id, { address }))).toBe(code);
    expect(ipam.pool(p.id)?.used).toBe(0);
    expect((await ipam.requestAddress(p.id)).address).toBe('10.1.0.2');
  });

  it('release: false for an address not handed out; errors for reserved and foreign ones', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/24' });
    expect(await ipam.releaseAddress(p.id, '10.1.0.9')).toBe(false);
    expect(await codeOf(ipam.releaseAddress(p.id, '10.1.0.1'))).toBe('IPAM_ADDRESS_RESERVED');
    expect(await codeOf(ipam.releaseAddress(p.id, '10.9.0.9'))).toBe('IPAM_ADDRESS_OUT_OF_RANGE');
    expect(await codeOf(ipam.releaseAddress('local/10.7.0.0/24', '10.7.0.9'))).toBe('IPAM_POOL_NOT_FOUND');
  });

  it('never hands one address to two concurrent requests', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/24' });
    const got = await Promise.allSettled(Array.from({ length: 300 }, () => ipam.requestAddress(p.id)));
    const ok = got.filter((r) => r.status === 'fulfilled').map((r) => r.value.address);
    expect(ok).toHaveLength(253);
    expect(new Set(ok).size).toBe(253);
    expect(got.filter((r) => r.status === 'rejected').map((r) => r.reason.code)).toEqual(
      Array(47).fill('IPAM_POOL_EXHAUSTED'),
    );
  });

  it('handles IPv6 given addresses in any spelling, keyed canonically', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: 'fd00:1::/64' });
    expect((await ipam.requestAddress(p.id, { address: 'FD00:1:0:0::ABCD' })).address).toBe('fd00:1::abcd');
    expect(await codeOf(ipam.requestAddress(p.id, { address: 'fd00:1::abcd' }))).toBe('IPAM_ADDRESS_IN_USE');
    expect(await codeOf(ipam.requestAddress(p.id, { address: 'fd00:1::' }))).toBe('IPAM_ADDRESS_RESERVED');
    expect(await ipam.releaseAddress(p.id, 'fd00:1:0:0:0:0:0:abcd')).toBe(true);
  });

  it('allocates in a large IPv4 subnet (a /8) and a small IPv6 one (a /120, bitmap)', async () => {
    const ipam = await newIpam();
    const big = await ipam.requestPool({ subnet: '10.0.0.0/8' });
    expect((await ipam.requestAddress(big.id, { address: '10.255.255.254' })).address).toBe('10.255.255.254');
    expect(await codeOf(ipam.requestAddress(big.id, { address: '10.255.255.255' }))).toBe('IPAM_ADDRESS_RESERVED');
    const small = await ipam.requestPool({ subnet: 'fd00::100/120' });
    expect((await ipam.requestAddress(small.id)).address).toBe('fd00::102');
  });
});

describe('MACs', () => {
  it('derives 02:42 + the IPv4 address on ip-derived pools, as Docker does', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.0.9.0/24', macs: 'ip-derived' });
    expect(await ipam.requestAddress(p.id, { mac: true })).toEqual({ address: '10.0.9.2', mac: '02:42:0a:00:09:02' });
  });

  it('gives random MACs that are locally administered, unicast and unique in the pool', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/20' });
    const macs = new Set<string>();
    for (let i = 0; i < 4000; i++) {
      const { mac } = await ipam.requestAddress(p.id, { mac: true });
      expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      const first = Number.parseInt(mac!.slice(0, 2), 16);
      expect(first & 0b11).toBe(0b10);
      macs.add(mac!);
    }
    expect(macs.size).toBe(4000);
  });

  it('takes a given MAC once, refuses a multicast or malformed one', async () => {
    const ipam = await newIpam();
    const p = await ipam.requestPool({ subnet: '10.1.0.0/24' });
    expect((await ipam.requestAddress(p.id, { mac: '02:00:00:00:00:01' })).mac).toBe('02:00:00:00:00:01');
    expect(await codeOf(ipam.requestAddress(p.id, { mac: '02:00:00:00:00:01' }))).toBe('IPAM_MAC_IN_USE');
    expect(await codeOf(ipam.requestAddress(p.id, { mac: '01:00:5e:00:00:01' }))).toBe('IPAM_INVALID_MAC');
    expect(await codeOf(ipam.requestAddress(p.id, { mac: '02:00:00:00:01' }))).toBe('IPAM_INVALID_MAC');
    // The failures handed out nothing; releasing frees the MAC for reuse.
    expect(ipam.pool(p.id)?.used).toBe(1);
    await ipam.releaseAddress(p.id, '10.1.0.2');
    expect((await ipam.requestAddress(p.id, { mac: '02:00:00:00:00:01' })).mac).toBe('02:00:00:00:00:01');
  });
});

describe('VNIs and firewall marks', () => {
  it('start at 4096 and 256, next free, given, released', async () => {
    const ipam = await newIpam();
    expect([await ipam.requestId('vni'), await ipam.requestId('vni')]).toEqual([4096, 4097]);
    expect(await ipam.requestId('mark')).toBe(256);
    expect(await ipam.requestId('vni', 5000)).toBe(5000);
    expect(await codeOf(ipam.requestId('vni', 5000))).toBe('IPAM_ID_IN_USE');
    expect(await codeOf(ipam.requestId('vni', 100))).toBe('IPAM_ID_OUT_OF_RANGE');
    expect(await codeOf(ipam.requestId('vni', 2 ** 24))).toBe('IPAM_ID_OUT_OF_RANGE');
    expect(await ipam.releaseId('vni', 4096)).toBe(true);
    expect(await ipam.releaseId('vni', 4096)).toBe(false);
    expect(await codeOf(ipam.requestId('flavour' as never))).toBe('IPAM_INVALID_OPTION');
  });

  it('report exhaustion of a configured range', async () => {
    const ipam = await newIpam({ markRange: [256, 258] });
    for (const want of [256, 257, 258]) expect(await ipam.requestId('mark')).toBe(want);
    expect(await codeOf(ipam.requestId('mark'))).toBe('IPAM_ID_EXHAUSTED');
  });
});

describe('diagnostics', () => {
  it('publishes pool and address events on cnmd:ipam:* channels', async () => {
    const { subscribe, unsubscribe } = await import('node:diagnostics_channel');
    const seen: unknown[] = [];
    const on = (m: unknown) => seen.push(m);
    subscribe('cnmd:ipam:pool', on);
    subscribe('cnmd:ipam:address', on);
    try {
      const ipam = await newIpam();
      const p = await ipam.requestPool({ subnet: '10.1.0.0/30' });
      const a = await ipam.requestAddress(p.id);
      await codeOf(ipam.requestAddress(p.id));
      await ipam.releaseAddress(p.id, a.address);
      await ipam.releasePool(p.id);
    } finally {
      unsubscribe('cnmd:ipam:pool', on);
      unsubscribe('cnmd:ipam:address', on);
    }
    expect(seen).toEqual([
      { op: 'create', pool: 'local/10.1.0.0/30', subnet: '10.1.0.0/30' },
      { op: 'allocate', pool: 'local/10.1.0.0/30', address: '10.1.0.2' },
      { op: 'exhausted', pool: 'local/10.1.0.0/30' },
      { op: 'release', pool: 'local/10.1.0.0/30', address: '10.1.0.2' },
      { op: 'release', pool: 'local/10.1.0.0/30', subnet: '10.1.0.0/30' },
    ]);
  });
});
