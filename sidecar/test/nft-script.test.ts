import { describe, expect, it } from 'vitest';
import {
  addElements,
  deleteElements,
  networkElements,
  portElements,
  replaceScript,
  skeleton,
} from '../src/firewall/nft-script.js';
import { checkNetwork, checkPort } from '../src/firewall/state.js';
import type { FwNetwork, FwPort } from '../src/firewall/types.js';

const net = (over: Partial<FwNetwork> = {}): FwNetwork => ({
  name: 'a',
  bridge: 'br-a',
  subnet: '10.1.0.0/24',
  internal: false,
  icc: true,
  ...over,
});
const port = (over: Partial<FwPort> = {}): FwPort => ({
  network: 'a',
  bridge: 'br-a',
  proto: 'tcp',
  hostPort: 8080,
  address: '10.1.0.2',
  port: 80,
  ...over,
});
const els = (n: FwNetwork, bridgeMeta = false) =>
  networkElements(checkNetwork(n), { bridgeMeta }).map((e) => `${e.family} ${e.set} ${e.key}`);

describe('skeleton', () => {
  it('creates cnmd tables only, idempotently: every chain is flushed before its rules', () => {
    const lines = skeleton({ bridgeMeta: true });
    expect(lines.filter((l) => /^add table/.test(l))).toEqual(['add table inet cnmd', 'add table bridge cnmd']);
    expect(lines.every((l) => / (inet|bridge) cnmd /.test(`${l} `))).toBe(true);
    expect(lines.some((l) => /^(delete|create)/.test(l))).toBe(false);
    for (const [i, l] of lines.entries()) {
      const m = /^add rule (\S+) cnmd (\S+) /.exec(l);
      if (m) expect(lines.slice(0, i)).toContain(`flush chain ${m[1]} cnmd ${m[2]}`);
    }
    // A rule may jump only to a chain added before it.
    const jump = lines.findIndex((l) => l.includes('jump published'));
    expect(lines.findIndex((l) => l.startsWith('add chain inet cnmd published'))).toBeLessThan(jump);
  });

  it('forwards in Docker order: return traffic, icc, internal, published, then drop into a bridge', () => {
    const fwd = skeleton({ bridgeMeta: false })
      .filter((l) => l.startsWith('add rule inet cnmd forward '))
      .map((l) => l.slice('add rule inet cnmd forward '.length));
    expect(fwd).toEqual([
      'ct state established,related accept',
      'iifname . oifname @samebr iifname @noicc drop',
      'iifname . oifname @samebr accept',
      'iifname @internal drop',
      'oifname @internal drop',
      'oifname @bridges ct status dnat accept',
      'oifname @bridges drop',
    ]);
  });

  it.each([
    [true, ['meta ibrname @noicc ether type { ip, ip6 } drop']],
    [false, ['ip saddr . ip daddr @noicc4 drop', 'ip6 saddr . ip6 daddr @noicc6 drop']],
  ])('bridge family icc rule with meta ibrname=%s', (bridgeMeta, rules) => {
    const br = skeleton({ bridgeMeta })
      .filter((l) => l.startsWith('add rule bridge cnmd forward '))
      .map((l) => l.slice('add rule bridge cnmd forward '.length));
    expect(br).toEqual(rules);
  });
});

describe('network elements', () => {
  it.each<[string, Partial<FwNetwork>, boolean, string[]]>([
    [
      'a plain network',
      {},
      false,
      [
        'inet bridges "br-a"',
        'inet samebr "br-a" . "br-a"',
        'inet subnets4 "br-a" . 10.1.0.0/24',
        'inet nat4 "br-a" . 10.1.0.0/24',
      ],
    ],
    [
      'dual stack',
      { subnet6: 'fd00:a:0::/64' },
      false,
      [
        'inet bridges "br-a"',
        'inet samebr "br-a" . "br-a"',
        'inet subnets4 "br-a" . 10.1.0.0/24',
        'inet subnets6 "br-a" . fd00:a::/64',
        'inet nat4 "br-a" . 10.1.0.0/24',
        'inet nat6 "br-a" . fd00:a::/64',
      ],
    ],
    [
      'internal: no masquerade',
      { internal: true, subnet6: 'fd00:a::/64' },
      false,
      [
        'inet bridges "br-a"',
        'inet samebr "br-a" . "br-a"',
        'inet subnets4 "br-a" . 10.1.0.0/24',
        'inet subnets6 "br-a" . fd00:a::/64',
        'inet internal "br-a"',
      ],
    ],
    [
      'icc=false by addresses',
      { icc: false, subnet6: 'fd00:a::/64' },
      false,
      [
        'inet bridges "br-a"',
        'inet samebr "br-a" . "br-a"',
        'inet subnets4 "br-a" . 10.1.0.0/24',
        'inet subnets6 "br-a" . fd00:a::/64',
        'inet nat4 "br-a" . 10.1.0.0/24',
        'inet nat6 "br-a" . fd00:a::/64',
        'inet noicc "br-a"',
        'bridge noicc4 10.1.0.0/24 . 10.1.0.0/24',
        'bridge noicc6 fd00:a::/64 . fd00:a::/64',
      ],
    ],
    [
      'icc=false by meta ibrname',
      { icc: false },
      true,
      [
        'inet bridges "br-a"',
        'inet samebr "br-a" . "br-a"',
        'inet subnets4 "br-a" . 10.1.0.0/24',
        'inet nat4 "br-a" . 10.1.0.0/24',
        'inet noicc "br-a"',
        'bridge noicc "br-a"',
      ],
    ],
  ])('%s', (_, over, bridgeMeta, want) => {
    expect(els(net(over), bridgeMeta)).toEqual(want);
  });
});

describe('port elements', () => {
  it.each<[Partial<FwPort>, string]>([
    [{}, 'ports4any tcp . 8080 : 10.1.0.2 . 80'],
    [{ hostIp: '0.0.0.0', proto: 'udp' }, 'ports4any udp . 8080 : 10.1.0.2 . 80'],
    [{ hostIp: '203.0.113.1' }, 'ports4 tcp . 203.0.113.1 . 8080 : 10.1.0.2 . 80'],
    [{ address: 'fd00:a:0::2' }, 'ports6any tcp . 8080 : fd00:a::2 . 80'],
    [{ address: 'fd00:a::2', hostIp: '2001:DB8::1' }, 'ports6 tcp . 2001:db8::1 . 8080 : fd00:a::2 . 80'],
  ])('%j', (over, want) => {
    const e = portElements(checkPort(port(over)));
    expect(`${e.set} ${e.key} : ${e.value}`).toBe(want);
  });
});

describe('transactions', () => {
  const n = checkNetwork(net({ icc: false }));
  const p = checkPort(port());

  it('adds a network and a port as a few elements, one line per set', () => {
    expect(addElements([...networkElements(n, { bridgeMeta: true }), portElements(p)])).toEqual([
      'add element inet cnmd bridges { "br-a" }',
      'add element inet cnmd samebr { "br-a" . "br-a" }',
      'add element inet cnmd subnets4 { "br-a" . 10.1.0.0/24 }',
      'add element inet cnmd nat4 { "br-a" . 10.1.0.0/24 }',
      'add element inet cnmd noicc { "br-a" }',
      'add element bridge cnmd noicc { "br-a" }',
      'add element inet cnmd ports4any { tcp . 8080 : 10.1.0.2 . 80 }',
    ]);
  });

  it('deletes elements whether or not the kernel has them: add, then delete by key', () => {
    expect(deleteElements([portElements(p)])).toEqual([
      'add element inet cnmd ports4any { tcp . 8080 : 10.1.0.2 . 80 }',
      'delete element inet cnmd ports4any { tcp . 8080 }',
    ]);
  });

  it('reconciles by rebuilding both tables in one script, dropped first', () => {
    const s = replaceScript({ bridgeMeta: false }, [n], [p]).trimEnd().split('\n');
    expect(s.slice(0, 4)).toEqual([
      'add table inet cnmd',
      'delete table inet cnmd',
      'add table bridge cnmd',
      'delete table bridge cnmd',
    ]);
    expect(s).toContain('add element inet cnmd ports4any { tcp . 8080 : 10.1.0.2 . 80 }');
    expect(s).toContain('add element bridge cnmd noicc4 { 10.1.0.0/24 . 10.1.0.0/24 }');
    expect(s.filter((l) => l.startsWith('delete')).length).toBe(2);
  });
});
