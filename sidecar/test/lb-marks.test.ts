// The iptables marks and SNAT of an IPVS load-balancer sandbox without a kernel: the rules'
// text, and when MarkedIpvs runs iptables-restore (once per change, the jumps only when missing).
import { LoadBalancer, MemoryDataPlane, type VirtualService } from '@cnmd/lb';
import { describe, expect, it } from 'vitest';
import type { Exec } from '../src/firewall/exec.js';
import { HeldDataPlane, MarkedIpvs } from '../src/lb/dataplane.js';
import { hasChains, markRules, missingJumps } from '../src/lb/marks.js';

const web: VirtualService = {
  mark: 256,
  vip: '10.0.1.5',
  ports: [
    { proto: 'tcp', port: 80 },
    { proto: 'udp', port: 53 },
  ],
  scheduler: 'rr',
  backends: [{ address: '10.0.1.7', weight: 1 }],
};
const all: VirtualService = { mark: 257, vip: '10.0.1.6', ports: [], scheduler: 'rr', backends: [] };
const v6: VirtualService = {
  mark: 258,
  vip: 'fd00:1::5',
  ports: [{ proto: 'tcp', port: 80 }],
  scheduler: 'rr',
  backends: [],
};
const snat = [
  { subnet: '10.0.1.0/24', source: '10.0.1.2' },
  { subnet: 'fd00:1::/64', source: 'fd00:1::2' },
];
const none = { prerouting: false, output: false, postrouting: false };

describe('markRules', () => {
  it('marks each port of a VIP, or every packet to it, and SNATs what IPVS forwards into the subnet', () => {
    expect(markRules(4, [all, web, v6], snat, { prerouting: true, output: true, postrouting: true })).toBe(
      [
        '*mangle',
        ':CNMD-LB-MARK - [0:0]',
        '-I PREROUTING 1 -j CNMD-LB-MARK',
        '-I OUTPUT 1 -j CNMD-LB-MARK',
        '-A CNMD-LB-MARK -d 10.0.1.5/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x100/0xffffffff',
        '-A CNMD-LB-MARK -d 10.0.1.5/32 -p udp -m udp --dport 53 -j MARK --set-xmark 0x100/0xffffffff',
        '-A CNMD-LB-MARK -d 10.0.1.6/32 -j MARK --set-xmark 0x101/0xffffffff',
        'COMMIT',
        '*nat',
        ':CNMD-LB-SNAT - [0:0]',
        '-I POSTROUTING 1 -j CNMD-LB-SNAT',
        '-A CNMD-LB-SNAT -d 10.0.1.0/24 -m ipvs --ipvs -j SNAT --to-source 10.0.1.2',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('writes IPv6 VIPs with /128 for ip6tables-restore, and no jump that exists', () => {
    const text = markRules(6, [web, v6], snat, none);
    expect(text).toContain(
      '-A CNMD-LB-MARK -d fd00:1::5/128 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x102/0xffffffff',
    );
    expect(text).toContain('-A CNMD-LB-SNAT -d fd00:1::/64 -m ipvs --ipvs -j SNAT --to-source fd00:1::2');
    expect(text).not.toContain('10.0.1');
    expect(text).not.toContain('-I ');
  });
});

describe('missingJumps and hasChains', () => {
  const saved = [
    '*mangle',
    ':PREROUTING ACCEPT [0:0]',
    ':CNMD-LB-MARK - [0:0]',
    '-A PREROUTING -j CNMD-LB-MARK',
    '-A CNMD-LB-MARK -d 10.0.1.5/32 -j MARK --set-xmark 0x100/0xffffffff',
    'COMMIT',
    '*nat',
    ':POSTROUTING ACCEPT [0:0]',
    '-A POSTROUTING -j CNMD-LB-SNAT',
    'COMMIT',
  ].join('\n');

  it('finds the jumps an iptables-save listing has, per built-in chain', () => {
    expect(missingJumps(saved)).toEqual({ prerouting: false, output: true, postrouting: false });
    expect(missingJumps('')).toEqual({ prerouting: true, output: true, postrouting: true });
  });

  it('tells whether cnmd left chains there', () => {
    expect(hasChains(saved)).toBe(true);
    expect(hasChains('*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n')).toBe(false);
  });
});

describe('MarkedIpvs', () => {
  function recorder(saved: Record<string, string> = {}) {
    const calls: { cmd: string; input?: string }[] = [];
    const exec: Exec = async (cmd, _args, input) => {
      calls.push({ cmd, ...(input !== undefined ? { input } : {}) });
      return saved[cmd] ?? '';
    };
    return { calls, exec };
  }

  it('writes the chains on the first change, then only when the marks change', async () => {
    const { calls, exec } = recorder();
    const ipvs = new MemoryDataPlane();
    const dp = new MarkedIpvs(ipvs, 'cnmd-lb-x', snat, exec);
    await dp.apply([web]);
    expect(calls.map((c) => c.cmd)).toEqual(['iptables-save', 'iptables-restore', 'ip6tables-save']);
    expect(calls[1]!.input).toContain('-I PREROUTING 1 -j CNMD-LB-MARK');
    expect(await ipvs.read()).toHaveLength(1);
    calls.length = 0;
    // a weight changes: IPVS only
    await dp.apply([{ ...web, backends: [{ address: '10.0.1.7', weight: 0 }] }]);
    expect(calls).toEqual([]);
    // a service goes: its marks go, in one transaction, with no jump added twice
    await dp.apply([]);
    expect(calls.map((c) => c.cmd)).toEqual(['iptables-restore']);
    expect(calls[0]!.input).not.toContain('-I ');
    expect(calls[0]!.input).not.toContain('-A CNMD-LB');
  });

  it('adds the jumps of a family with the first service of that family, however late', async () => {
    const { calls, exec } = recorder();
    const dp = new MarkedIpvs(new MemoryDataPlane(), 'cnmd-lb-x', snat, exec);
    await dp.apply([web]);
    await dp.apply([web, v6]);
    expect(calls.map((c) => c.cmd)).toEqual([
      'iptables-save',
      'iptables-restore',
      'ip6tables-save',
      'ip6tables-restore',
    ]);
    expect(calls[3]!.input).toBe(markRules(6, [v6], snat, { prerouting: true, output: true, postrouting: true }));
  });

  it('with a hint, skips the marks when only backends changed, and writes them when ports did', async () => {
    const { calls, exec } = recorder();
    const dp = new MarkedIpvs(new MemoryDataPlane(), 'cnmd-lb-x', snat, exec);
    await dp.apply([web, all]);
    calls.length = 0;
    const drained = { ...web, backends: [{ address: '10.0.1.7', weight: 0 }] };
    await dp.apply([drained, all], { changed: [drained], removed: [] });
    expect(calls).toEqual([]);
    const moved = { ...all, ports: [{ proto: 'tcp' as const, port: 8080 }] };
    await dp.apply([drained, moved], { changed: [moved], removed: [] });
    expect(calls.map((c) => c.cmd)).toEqual(['iptables-restore']);
    expect(calls[0]!.input).toContain('-d 10.0.1.6/32 -p tcp -m tcp --dport 8080');
  });

  it('after a restart, rewrites chains a killed daemon left, and adds only the missing jumps', async () => {
    const left = '*mangle\n:CNMD-LB-MARK - [0:0]\n-A PREROUTING -j CNMD-LB-MARK\n-A OUTPUT -j CNMD-LB-MARK\nCOMMIT\n';
    const { calls, exec } = recorder({ 'iptables-save': left });
    await new MarkedIpvs(new MemoryDataPlane(), 'cnmd-lb-x', snat, exec).apply([]);
    expect(calls.map((c) => c.cmd)).toEqual(['iptables-save', 'iptables-restore', 'ip6tables-save']);
    expect(calls[1]!.input).toBe(markRules(4, [], [], { prerouting: false, output: false, postrouting: true }));
  });

  it('fails with SIDECAR_LB_MARKS when iptables-restore refuses, and tries again next time', async () => {
    let refuse = true;
    let restored = 0;
    const exec: Exec = async (cmd) => {
      if (cmd !== 'iptables-restore') return '';
      if (refuse) throw new Error('iptables-restore: line 3 failed');
      restored++;
      return '';
    };
    const dp = new MarkedIpvs(new MemoryDataPlane(), 'cnmd-lb-x', snat, exec);
    await expect(dp.apply([web])).rejects.toMatchObject({ code: 'SIDECAR_LB_MARKS' });
    refuse = false;
    await dp.apply([web]);
    expect(restored).toBe(1);
  });
});

describe('HeldDataPlane', () => {
  it('keeps what the kernel holds while services come back one by one, then applies them at once', async () => {
    const kernel = new MemoryDataPlane();
    await kernel.apply([web, all]); // what a killed daemon left
    const held = new HeldDataPlane(kernel);
    const lb = new LoadBalancer({ dataplane: held });
    const network = { name: 'n', subnets: ['10.0.1.0/24'] };
    await lb.addService({ name: 'web', network, vip: web.vip, mark: web.mark, ports: [{ port: 80 }] });
    expect((await kernel.read()).map((s) => s.mark)).toEqual([256, 257]);
    held.release();
    await lb.sync();
    expect((await kernel.read()).map((s) => s.mark)).toEqual([256]);
    await lb.close();
  });
});
