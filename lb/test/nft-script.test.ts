import { describe, expect, it } from 'vitest';
import { desiredState, diff } from '../src/dataplanes/nft-diff.js';
import { parseListing, servicesOf } from '../src/dataplanes/nft-read.js';
import { chainRules, skeleton } from '../src/dataplanes/nft-script.js';
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
const multi: VirtualService = {
  mark: 258,
  vip: '10.0.1.11',
  ports: [
    { proto: 'tcp', port: 80, targetPort: 8080 },
    { proto: 'udp', port: 53 },
  ],
  scheduler: 'wrr',
  backends: [
    { address: '10.0.1.2', weight: 2 },
    { address: '10.0.1.3', weight: 0 },
  ],
};

const elements = (vs: VirtualService[]) => {
  const out: Record<string, string> = {};
  for (const s of desiredState(vs).services.values()) {
    for (let i = 0; i < s.els.length; i += 3) out[`${s.els[i]}|${s.els[i + 1]}`] = s.els[i + 2]!;
  }
  return out;
};

describe('the elements of a service', () => {
  it('are a few elements of table-wide maps, no map or chain per service', () => {
    expect(elements([web, dns6])).toEqual({
      'svc4|10.0.1.10 . tcp . 80': '256',
      'counts|256': 'jump rr_p_3',
      'slotp4|256 . 0': '10.0.1.2 . 8080',
      'slotp4|256 . 1': '10.0.1.3 . 8080',
      'slotp4|256 . 2': '10.0.1.4 . 8080',
      'vips6|fd00:1::53': '257',
      'weights6|257 . fd00:1::2': '2',
      'counts|257': 'jump sh_a_1',
      'slots6|257 . 0': 'fd00:1::2',
    });
    expect([...desiredState([web, dns6]).chains]).toEqual(['rr_p_3', 'sh_a_1']);
  });

  it('take target ports from tport for a service of several ports; drained backends only in weights', () => {
    expect(elements([multi])).toEqual({
      'svc4|10.0.1.11 . tcp . 80': '258',
      'tport4|10.0.1.11 . tcp . 80': '8080',
      'svc4|10.0.1.11 . udp . 53': '258',
      'tport4|10.0.1.11 . udp . 53': '53',
      'weights4|258 . 10.0.1.2': '2',
      'weights4|258 . 10.0.1.3': '0',
      'counts|258': 'jump wrr_t_1',
      'slots4|258 . 0': '10.0.1.2',
    });
  });

  it('leave a service with no live backend out of counts, its scheduler in info', () => {
    const e = elements([
      { ...web, ports: [{ proto: 'udp', port: 53 }], backends: [{ address: '10.0.1.2', weight: 0 }] },
    ]);
    expect(e).toEqual({
      'svc4|10.0.1.10 . udp . 53': '256',
      'weights4|256 . 10.0.1.2': '0',
      'info|256': '0',
    });
  });
});

describe('diff', () => {
  it('sends only the difference: draining one backend of three is a handful of elements', () => {
    const drained = { ...web, backends: web.backends.map((b, i) => (i === 1 ? { ...b, weight: 0 } : b)) };
    const d = diff(desiredState([web]), [drained]);
    expect(d.lines).toEqual([
      'add chain inet cnmd_lb rr_p_2',
      'add rule inet cnmd_lb rr_p_2 meta nfproto ipv4 ct mark set numgen inc mod 2 meta l4proto { tcp, udp } dnat ip to meta mark . ct mark map @slotp4',
      'add rule inet cnmd_lb rr_p_2 meta nfproto ipv6 ct mark set numgen inc mod 2 meta l4proto { tcp, udp } dnat ip6 to meta mark . ct mark map @slotp6',
      'delete element inet cnmd_lb counts { 256 }',
      'delete element inet cnmd_lb slotp4 { 256 . 1, 256 . 2 }',
      'add element inet cnmd_lb weights4 { 256 . 10.0.1.3 : 0 }',
      'add element inet cnmd_lb counts { 256 : jump rr_p_2 }',
      'add element inet cnmd_lb slotp4 { 256 . 1 : 10.0.1.4 . 8080 }',
    ]);
    expect(d).toMatchObject({ added: 1, changed: 2, removed: 1 });
  });

  it('sends nothing when nothing changed, and all of a service that goes', () => {
    expect(diff(desiredState([web, dns6]), [web, dns6]).lines).toEqual([]);
    expect(diff(desiredState([web, dns6]), [web]).lines).toEqual([
      'delete element inet cnmd_lb vips6 { fd00:1::53 }',
      'delete element inet cnmd_lb weights6 { 257 . fd00:1::2 }',
      'delete element inet cnmd_lb counts { 257 }',
      'delete element inet cnmd_lb slots6 { 257 . 0 }',
    ]);
  });

  it('takes the same frozen object as unchanged without looking into it', () => {
    const frozen = Object.freeze({
      ...web,
      ports: Object.freeze(web.ports.map((p) => Object.freeze({ ...p }))),
      backends: Object.freeze(web.backends.map((b) => Object.freeze({ ...b }))),
    });
    const held = diff(desiredState([]), [frozen]).next;
    expect(held.services.get(256)?.src).toBe(frozen);
    expect(diff(held, [frozen]).lines).toEqual([]);
  });
});

it('writes the slot chains with numgen for rr and jhash of the source for sh', () => {
  expect(chainRules('rr_a_3')[1]).toBe(
    'add rule inet cnmd_lb rr_a_3 meta nfproto ipv4 ct mark set numgen inc mod 3 dnat ip to meta mark . ct mark map @slots4',
  );
  expect(chainRules('sh_t_2')[2]).toBe(
    'add rule inet cnmd_lb sh_t_2 meta nfproto ipv6 ct mark set jhash ip6 saddr mod 2 meta l4proto { tcp, udp } dnat ip6 to meta mark . ct mark map @slots6 : ip6 daddr . meta l4proto . th dport map @tport6',
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
      {
        map: {
          name: 'counts',
          elem: [
            [256, { jump: { target: 'rr_p_3' } }],
            [257, { jump: { target: 'sh_a_1' } }],
          ],
        },
      },
      {
        map: {
          name: 'slotp4',
          elem: [0, 1, 2].map((i) => [{ concat: [256, i] }, { concat: [`10.0.1.${i + 2}`, 8080] }]),
        },
      },
      { map: { name: 'vips6', elem: [['fd00:1::53', 257]] } },
      { map: { name: 'weights6', elem: [[{ concat: [257, 'fd00:1::2'] }, 2]] } },
      { map: { name: 'slots6', elem: [[{ concat: [257, 0] }, 'fd00:1::2']] } },
      { chain: { family: 'inet', table: 'cnmd_lb', name: 'sh_a_1' } },
    ],
  });
  const held = parseListing(listing);
  expect(servicesOf(held)).toEqual([web, { ...dns6, vip: 'fd00:1::53' }]);
  expect(held.chains).toEqual(new Set(['rr_p_3', 'sh_a_1']));
  // A data plane that starts on this table sends nothing to reach the same state.
  expect(diff(held, [web, dns6]).lines).toEqual([]);
});

it('reads back a service of several ports and drained backends', () => {
  const held = desiredState([multi]);
  for (const s of held.services.values()) s.fp = '';
  expect(servicesOf(held)).toEqual([multi]);
});
