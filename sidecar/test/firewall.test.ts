// The firewall's checks and transactions without a kernel: the nftables firewall with a
// recording `exec`, and the memory firewall, refuse the same things with the same codes.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { formatAddr, parseAddr } from '@cnmd/netutil';
import { describe, expect, it } from 'vitest';
import { type FirewallErrorCode, isFirewallError } from '../src/firewall/errors.js';
import type { Exec } from '../src/firewall/exec.js';
import { MemoryFirewall } from '../src/firewall/memory.js';
import { NftablesFirewall } from '../src/firewall/nftables.js';
import type { Firewall, FwNetwork, FwPort } from '../src/firewall/types.js';

const A: FwNetwork = {
  name: 'a',
  bridge: 'br-a',
  subnet: '10.1.0.0/24',
  subnet6: 'fd00:a::/64',
  internal: false,
  icc: true,
};
const B: FwNetwork = { name: 'b', bridge: 'br-b', subnet: '10.2.0.0/24', internal: true, icc: true };
const port = (over: Partial<FwPort> = {}): FwPort => ({
  network: 'a',
  bridge: 'br-a',
  proto: 'tcp',
  hostPort: 8080,
  address: '10.1.0.2',
  port: 80,
  ...over,
});

async function codeOf(p: Promise<unknown>): Promise<FirewallErrorCode | 'none'> {
  try {
    await p;
    return 'none';
  } catch (err) {
    if (isFirewallError(err)) return err.code;
    throw err;
  }
}

/** An exec that records every call and can be told to fail the next nft, or sysctl. */
function recorder() {
  const calls: { cmd: string; args: string[]; input?: string }[] = [];
  let failNext = false;
  let failSysctl = false;
  const exec: Exec = async (cmd, args, input) => {
    calls.push({ cmd, args, input });
    if (cmd === 'sysctl' && failSysctl) throw new Error('sysctl: cannot stat /proc/sys/net/ipv4/conf/br-a');
    if (cmd === 'nft' && args[0] === '-c') throw new Error('Operation not supported'); // no meta ibrname
    if (cmd === 'nft' && failNext) {
      failNext = false;
      throw new Error('nft: Error: Could not process rule');
    }
    return '';
  };
  return {
    calls,
    exec,
    fail: () => (failNext = true),
    failSysctl: (on: boolean) => {
      failSysctl = on;
    },
    nft: () => calls.filter((c) => c.cmd === 'nft' && c.args[0] === '-f'),
  };
}

const firewalls: [string, () => Firewall][] = [
  ['nftables', () => new NftablesFirewall({ exec: recorder().exec })],
  ['memory', () => new MemoryFirewall()],
];

describe.each(firewalls)('%s firewall: what it refuses', (_, make) => {
  it.each<[string, Partial<FwPort>[], Partial<FwPort>, FirewallErrorCode | 'none']>([
    ['the same host port twice', [{}], {}, 'SIDECAR_PORT_IN_USE'],
    ['the same port, another container', [{}], { address: '10.1.0.3' }, 'SIDECAR_PORT_IN_USE'],
    ['one address after all addresses', [{}], { hostIp: '198.51.100.1' }, 'SIDECAR_PORT_IN_USE'],
    ['all addresses after one address', [{ hostIp: '198.51.100.1' }], {}, 'SIDECAR_PORT_IN_USE'],
    ['0.0.0.0 is all addresses', [{}], { hostIp: '0.0.0.0' }, 'SIDECAR_PORT_IN_USE'],
    [
      'IPv6 spelled two ways',
      [{ hostIp: '2001:db8::1', address: 'fd00:a::2' }],
      { hostIp: '2001:DB8:0::1', address: 'fd00:a::3' },
      'SIDECAR_PORT_IN_USE',
    ],
    ['another protocol', [{}], { proto: 'udp' }, 'none'],
    ['another family', [{}], { address: 'fd00:a::2' }, 'none'],
    ['two host addresses', [{ hostIp: '198.51.100.1' }], { hostIp: '198.51.100.2' }, 'none'],
    ['an unknown network', [], { network: 'x' }, 'SIDECAR_NETWORK_NOT_FOUND'],
    ['another bridge than the network', [], { bridge: 'br-b' }, 'SIDECAR_INVALID_ARGUMENT'],
    ['an internal network', [], { network: 'b', bridge: 'br-b', address: '10.2.0.2' }, 'SIDECAR_INVALID_ARGUMENT'],
    ['an address outside the subnet', [], { address: '10.9.0.2' }, 'SIDECAR_INVALID_ARGUMENT'],
    [
      'an IPv6 address on an IPv4-only network',
      [],
      { network: 'b', bridge: 'br-b', address: 'fd00::2' },
      'SIDECAR_INVALID_ARGUMENT',
    ],
    ['port 0', [], { hostPort: 0 }, 'SIDECAR_INVALID_ARGUMENT'],
    ['port 65536', [], { port: 65536 }, 'SIDECAR_INVALID_ARGUMENT'],
    ['sctp', [], { proto: 'sctp' as 'tcp' }, 'SIDECAR_INVALID_ARGUMENT'],
    ['hostIp of another family', [], { hostIp: '::1' }, 'SIDECAR_INVALID_ARGUMENT'],
    ['hostIp that is no address', [], { hostIp: 'localhost' }, 'SIDECAR_INVALID_ARGUMENT'],
  ])('publish: %s', async (_, before, p, code) => {
    const fw = make();
    await fw.addNetwork(A);
    await fw.addNetwork(B);
    for (const b of before) await fw.publish(port(b));
    const had = fw.ports();
    expect(await codeOf(fw.publish(port(p)))).toBe(code);
    if (code !== 'none') expect(fw.ports()).toEqual(had);
    await fw.close();
  });

  it.each<[string, Partial<FwNetwork>, FirewallErrorCode | 'none']>([
    ['the same network again', {}, 'none'],
    ['another configuration under the same name', { icc: false }, 'SIDECAR_NETWORK_CONFLICT'],
    ['the bridge of another network', { name: 'c' }, 'SIDECAR_NETWORK_CONFLICT'],
    ['an overlapping subnet', { name: 'c', bridge: 'br-c', subnet: '10.1.0.128/25' }, 'SIDECAR_NETWORK_CONFLICT'],
    [
      'an overlapping IPv6 subnet',
      { name: 'c', bridge: 'br-c', subnet: '10.3.0.0/24', subnet6: 'fd00:a::/48' },
      'SIDECAR_NETWORK_CONFLICT',
    ],
    [
      'a bridge name nft could misread',
      { name: 'c', bridge: 'br" drop', subnet: '10.3.0.0/24' },
      'SIDECAR_INVALID_ARGUMENT',
    ],
    [
      'a bridge name too long',
      { name: 'c', bridge: 'a-very-long-bridge', subnet: '10.3.0.0/24' },
      'SIDECAR_INVALID_ARGUMENT',
    ],
    ['a subnet with host bits', { name: 'c', bridge: 'br-c', subnet: '10.3.0.1/24' }, 'SIDECAR_INVALID_ARGUMENT'],
    ['an IPv6 subnet as IPv4', { name: 'c', bridge: 'br-c', subnet: 'fd00:c::/64' }, 'SIDECAR_INVALID_ARGUMENT'],
  ])('addNetwork: %s', async (_, over, code) => {
    const fw = make();
    await fw.addNetwork(A);
    expect(await codeOf(fw.addNetwork({ ...A, ...over }))).toBe(code);
    expect(fw.networks()).toEqual([A]);
    await fw.close();
  });

  it('checkPorts publishes nothing, and sees a port named twice or taken in either family', async () => {
    const fw = make();
    await fw.addNetwork(A);
    await fw.publish(port({ address: 'fd00:a::2' }));
    expect(await codeOf(fw.checkPorts([{ proto: 'tcp', hostPort: 9090 }]))).toBe('none');
    expect(await codeOf(fw.checkPorts([{ proto: 'tcp', hostPort: 8080 }]))).toBe('SIDECAR_PORT_IN_USE');
    expect(await codeOf(fw.checkPorts([{ proto: 'tcp', hostPort: 8080, hostIp: '198.51.100.1' }]))).toBe('none');
    expect(
      await codeOf(
        fw.checkPorts([
          { proto: 'udp', hostPort: 53, hostIp: '198.51.100.1' },
          { proto: 'udp', hostPort: 53 },
        ]),
      ),
    ).toBe('SIDECAR_PORT_IN_USE');
    expect(fw.ports()).toHaveLength(1);
    await fw.close();
  });

  it('removing a network removes its ports; unpublish and removeNetwork ignore the unknown', async () => {
    const fw = make();
    await fw.addNetwork(A);
    await fw.publish(port());
    await fw.removeNetwork('a');
    expect(fw.ports()).toEqual([]);
    await fw.removeNetwork('a');
    await fw.unpublish(port());
    await fw.addNetwork(A);
    await fw.publish(port()); // the host port is free again
    await fw.unpublish(port({ address: '10.1.0.9', port: 1 })); // named by its host side
    expect(fw.ports()).toEqual([]);
    await fw.close();
  });

  it('reconcile checks the whole state first and refuses a conflicting one as a whole', async () => {
    const fw = make();
    await fw.addNetwork(A);
    expect(await codeOf(fw.reconcile([B], [port({ network: 'zz' })]))).toBe('SIDECAR_NETWORK_NOT_FOUND');
    expect(fw.networks()).toEqual([A]);
    await fw.reconcile([B, { ...A, name: 'a2' }], [port({ network: 'a2' })]);
    expect(fw.networks().map((n) => n.name)).toEqual(['b', 'a2']);
    expect(fw.ports()).toHaveLength(1);
    await fw.close();
  });

  it('close is idempotent, and after it calls are refused', async () => {
    const fw = make();
    await fw.close();
    await fw.close();
    expect(await codeOf(fw.addNetwork(A))).toBe('SIDECAR_FIREWALL_CLOSED');
  });
});

describe('nftables firewall: transactions', () => {
  it('sends one nft script per change, and nothing for a refused one', async () => {
    const r = recorder();
    const fw = new NftablesFirewall({ exec: r.exec });
    await fw.start();
    await fw.addNetwork(A);
    await fw.publish(port());
    const before = r.calls.length;
    await expect(fw.publish(port({ address: '10.1.0.3' }))).rejects.toMatchObject({ code: 'SIDECAR_PORT_IN_USE' });
    expect(r.calls.length).toBe(before);
    const nft = r.nft().map((c) => c.input ?? '');
    expect(nft).toHaveLength(3); // skeleton, network, port
    expect(nft[2]).toBe('add element inet cnmd ports4any { tcp . 8080 : 10.1.0.2 . 80 }\n');
    // The IPv4 port made the bridge route 127.0.0.1 (for the host's localhost), before the DNAT.
    expect(r.calls.findIndex((c) => c.cmd === 'sysctl')).toBeLessThan(r.calls.length - 1);
    expect(r.calls.find((c) => c.cmd === 'sysctl')?.args).toEqual(['-q', '-w', 'net/ipv4/conf/br-a/route_localnet=1']);
    // Without meta ibrname (the probe failed), icc=false is by subnet in the bridge table.
    await fw.addNetwork({ ...B, icc: false });
    expect(r.nft().at(-1)?.input).toContain('add element bridge cnmd noicc4 { 10.2.0.0/24 . 10.2.0.0/24 }');
  });

  it('sends nothing at all for a refused first call', async () => {
    const r = recorder();
    const fw = new NftablesFirewall({ exec: r.exec, bridgeMeta: true });
    await expect(fw.addNetwork({ ...A, subnet: '10.1.0.1/24' })).rejects.toMatchObject({
      code: 'SIDECAR_INVALID_ARGUMENT',
    });
    await expect(fw.publish(port())).rejects.toMatchObject({ code: 'SIDECAR_NETWORK_NOT_FOUND' });
    expect(r.calls).toEqual([]);
  });

  it('keeps its state when nft refuses: the change can be tried again', async () => {
    const r = recorder();
    const fw = new NftablesFirewall({ exec: r.exec, bridgeMeta: true });
    await fw.addNetwork(A);
    r.fail();
    await expect(fw.publish(port())).rejects.toMatchObject({ code: 'SIDECAR_NFT' });
    expect(fw.ports()).toEqual([]);
    await fw.publish(port());
    expect(fw.ports()).toHaveLength(1);
    r.fail();
    await expect(fw.removeNetwork('a')).rejects.toMatchObject({ code: 'SIDECAR_NFT' });
    expect(fw.networks()).toHaveLength(1);
    expect(r.calls.some((c) => c.args[0] === '-c')).toBe(false); // bridgeMeta given: no probe
  });

  it('serialises concurrent calls: two publishes of one port, one wins', async () => {
    const fw = new NftablesFirewall({ exec: recorder().exec, bridgeMeta: true });
    await fw.addNetwork(A);
    const got = await Promise.all([codeOf(fw.publish(port())), codeOf(fw.publish(port({ address: '10.1.0.3' })))]);
    expect(got.sort()).toEqual(['SIDECAR_PORT_IN_USE', 'none']);
  });

  it('removes its tables on close, once', async () => {
    const r = recorder();
    const fw = new NftablesFirewall({ exec: r.exec, bridgeMeta: true });
    await fw.start();
    await fw.close();
    await fw.close();
    const last = r.nft().at(-1)?.input ?? '';
    expect(last).toBe('add table inet cnmd\ndelete table inet cnmd\nadd table bridge cnmd\ndelete table bridge cnmd\n');
    expect(r.nft()).toHaveLength(2);
  });
});

describe('nftables firewall: restarts and missing bridges', () => {
  it('start rebuilds tables that another version left with other set types', async () => {
    const r = recorder();
    const fw = new NftablesFirewall({ exec: r.exec, bridgeMeta: true });
    r.fail();
    await fw.start();
    const [first, second] = r.nft().map((c) => c.input ?? '');
    expect(first?.startsWith('add table inet cnmd\nadd set')).toBe(true);
    expect(second?.startsWith('add table inet cnmd\ndelete table inet cnmd\n')).toBe(true);
  });

  it('publish on a bridge whose route_localnet cannot be set changes nothing', async () => {
    const r = recorder();
    const fw = new NftablesFirewall({ exec: r.exec, bridgeMeta: true });
    await fw.addNetwork(A);
    const sent = r.nft().length;
    r.failSysctl(true);
    await expect(fw.publish(port())).rejects.toMatchObject({ code: 'SIDECAR_SYSCTL' });
    expect(r.nft().length).toBe(sent);
    expect(fw.ports()).toEqual([]);
  });

  it('reconcile puts the rules in force first, then reports the bridge it could not set', async () => {
    const r = recorder();
    const fw = new NftablesFirewall({ exec: r.exec, bridgeMeta: true });
    r.failSysctl(true);
    await expect(fw.reconcile([A], [port()])).rejects.toMatchObject({ code: 'SIDECAR_SYSCTL' });
    expect(fw.ports()).toHaveLength(1);
    expect(r.nft().at(-1)?.input).toContain('add element inet cnmd ports4any { tcp . 8080 : 10.1.0.2 . 80 }');
  });

  it('publishes each transaction on cnmd:sidecar:firewall', async () => {
    const seen: unknown[] = [];
    const onEvent = (m: unknown) => seen.push(m);
    subscribe('cnmd:sidecar:firewall', onEvent);
    try {
      const r = recorder();
      const fw = new NftablesFirewall({ exec: r.exec, bridgeMeta: true });
      await fw.addNetwork(A);
      r.fail();
      await fw.publish(port()).catch(() => {});
    } finally {
      unsubscribe('cnmd:sidecar:firewall', onEvent);
    }
    expect(seen).toMatchObject([
      { op: 'start', error: undefined },
      { op: 'addNetwork', lines: 6, error: undefined },
      { op: 'publish', lines: 1, error: 'SIDECAR_NFT' },
    ]);
  });
});

describe('addresses', () => {
  it.each([
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['::', '::'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['fd00:0:0:1:0:0:0:0', 'fd00:0:0:1::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:0:0:2:2:0:0:3', '1::2:2:0:0:3'],
    ['192.0.2.1', '192.0.2.1'],
  ])('%s is %s', (s, want) => {
    expect(formatAddr(parseAddr(s)!)).toBe(want);
  });
});
