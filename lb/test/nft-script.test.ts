import { describe, expect, it } from 'vitest';
import { chainRules, desiredState, diff, parseListing, servicesOf, skeleton } from '../src/dataplanes/nft-script.js';
import type { VirtualService } from '../src/types.js';

const web: VirtualService = {
  mark: 256,
  vip: '10.0.1.10',
  ports: [{ proto: 'tcp', port: 80, targetPort: 8080 }],
  scheduler: 'rr',
  backends: [
    { address: '10.0.1.2', weight: 1 },
    { address: '10.0.1.3', weight: 1 },
    { address: '10.0.1.4', weight: 1 },
  ],
};
const dns6: VirtualService = {
  mark: 257,
  vip: 'fd00:1:0::53',
  ports: [],
  scheduler: 'sh',
  backends: [{ address: 'fd00:1::2', weight: 2 }],
};

describe('desiredState', () => {
  it('puts every service in the table-wide maps, no map or chain per service', () => {
    const h = desiredState([web, dns6]);
    expect(Object.fromEntries(h.elements)).toEqual({
      'svc4|10.0.1.10 . tcp . 80': '256',
      'tport4|10.0.1.10 . tcp . 80': '8080',
      'info|256': '0',
      'weights4|256 . 10.0.1.2': '1',
      'weights4|256 . 10.0.1.3': '1',
      'weights4|256 . 10.0.1.4': '1',
      'counts|256': 'jump rr_p_3',
      'slots4|256 . 0': '10.0.1.2',
      'slots4|256 . 1': '10.0.1.3',
      'slots4|256 . 2': '10.0.1.4',
      'vips6|fd00:1::53': '257',
      'info|257': '3',
      'weights6|257 . fd00:1::2': '2',
      'counts|257': 'jump sh_a_1',
      'slots6|257 . 0': 'fd00:1::2',
    });
    expect([...h.chains]).toEqual(['rr_p_3', 'sh_a_1']);
  });

  it('keeps the port when no port is translated, and a service with no live backend out of counts', () => {
    const h = desiredState([
      { ...web, ports: [{ proto: 'udp', port: 53 }], backends: [{ address: '10.0.1.2', weight: 0 }] },
    ]);
    expect(h.elements.has('tport4|10.0.1.10 . udp . 53')).toBe(false);
    expect(h.elements.has('counts|256')).toBe(false);
    expect(h.elements.get('weights4|256 . 10.0.1.2')).toBe('0');
  });
});

describe('diff', () => {
  it('sends only the difference: draining one backend of three is a handful of elements', () => {
    const before = desiredState([web]);
    const drained = { ...web, backends: web.backends.map((b, i) => (i === 1 ? { ...b, weight: 0 } : b)) };
    const d = diff(before, desiredState([drained]));
    expect(d.lines).toEqual([
      'add chain inet cnmd_lb rr_p_2',
      expect.stringContaining('numgen inc mod 2 map @slots4 : ip daddr . meta l4proto . th dport map @tport4'),
      expect.stringContaining('ip6'),
      'delete element inet cnmd_lb weights4 { 256 . 10.0.1.3 }',
      'delete element inet cnmd_lb counts { 256 }',
      'delete element inet cnmd_lb slots4 { 256 . 1, 256 . 2 }',
      'add element inet cnmd_lb weights4 { 256 . 10.0.1.3 : 0 }',
      'add element inet cnmd_lb counts { 256 : jump rr_p_2 }',
      'add element inet cnmd_lb slots4 { 256 . 1 : 10.0.1.4 }',
    ]);
    expect(d).toMatchObject({ added: 0, changed: 3, removed: 1 });
  });

  it('sends nothing when nothing changed', () => {
    expect(diff(desiredState([web, dns6]), desiredState([web, dns6])).lines).toEqual([]);
  });
});

it('writes the slot chains with numgen for rr and jhash of the source for sh', () => {
  expect(chainRules('rr_a_3')[1]).toBe(
    'add rule inet cnmd_lb rr_a_3 meta nfproto ipv4 dnat ip to meta mark . numgen inc mod 3 map @slots4',
  );
  expect(chainRules('sh_a_2')[2]).toBe(
    'add rule inet cnmd_lb sh_a_2 meta nfproto ipv6 dnat ip6 to meta mark . jhash ip6 saddr mod 2 map @slots6',
  );
  expect(skeleton().join('\n')).toContain('meta mark != 0 ct status dnat masquerade');
});

it('reads back what nft lists, in the form it was written', () => {
  // Shaped like `nft -j list table inet cnmd_lb` on nftables 1.0.6.
  const listing = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { chain: { family: 'inet', table: 'cnmd_lb', name: 'rr_p_3' } },
      { chain: { family: 'inet', table: 'cnmd_lb', name: 'prerouting' } },
      { map: { name: 'svc4', elem: [[{ concat: ['10.0.1.10', 'tcp', 80] }, 256]] } },
      { map: { name: 'tport4', elem: [[{ concat: ['10.0.1.10', 'tcp', 80] }, 8080]] } },
      { map: { name: 'info', elem: [[256, 0]] } },
      { map: { name: 'counts', elem: [[256, { jump: { target: 'rr_p_3' } }]] } },
      {
        map: {
          name: 'slots4',
          elem: [0, 1, 2].map((i) => [{ concat: [256, i] }, `10.0.1.${i + 2}`]),
        },
      },
      { map: { name: 'weights4', elem: [2, 3, 4].map((i) => [{ concat: [256, `10.0.1.${i}`] }, 1]) } },
      { map: { name: 'vips6', elem: [['fd00:1::53', 257]] } },
      { map: { name: 'info', elem: [[257, 3]] } },
      { map: { name: 'weights6', elem: [[{ concat: [257, 'fd00:1::2'] }, 2]] } },
      { map: { name: 'counts', elem: [[257, { jump: { target: 'sh_a_1' } }]] } },
      { map: { name: 'slots6', elem: [[{ concat: [257, 0] }, 'fd00:1::2']] } },
      { chain: { family: 'inet', table: 'cnmd_lb', name: 'sh_a_1' } },
    ],
  });
  const held = parseListing(listing);
  const want = desiredState([web, dns6]);
  expect(held).toEqual(want);
  expect(servicesOf(held)).toEqual([web, { ...dns6, vip: 'fd00:1::53' }]);
});
