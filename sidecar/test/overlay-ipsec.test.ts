// What an encrypted overlay asks of IPsec (drivers/overlay/ipsec.ts), computed on each host from
// the same keys: the states one host sends through are the ones its peer receives through, and
// a rotation writes in the order that drops nothing. The kernel doing it is the VM's test.
import { describe, expect, it } from 'vitest';
import { applyTunnel, spiOf, type Tunnel, wanted } from '../src/drivers/overlay/ipsec.js';
import type { Policy, Sa } from '../src/kernel/xfrm/messages.js';
import type { Xfrm } from '../src/kernel/xfrm/xfrm.js';

const net = 'ab'.repeat(32);
const A = '198.18.0.10';
const B = '198.18.0.11';
const at = (local: string): Tunnel => ({ network: net, reqid: 4096, port: 4800, local });
const k = (tag: number) => ({ tag, key: Buffer.alloc(32, tag) });

describe('an encrypted overlay between two hosts', () => {
  it('each host sends through the state its peer receives through: same SPI, same key', () => {
    const keys = { keys: [k(1)], primary: 1 };
    const a = wanted(at(A), [B], keys);
    const b = wanted(at(B), [A], keys);
    const id = (s: Sa) => `${s.src}>${s.dst}#${s.spi}:${s.key!.toString('hex')}`;
    expect(a.sas.map(id).sort()).toEqual(b.sas.map(id).sort());
    // Two states, one each way, with different SPIs and keys (GCM must never reuse a key and nonce).
    expect(a.sas).toHaveLength(2);
    expect(a.sas[0]!.spi).not.toBe(a.sas[1]!.spi);
    expect(a.sas[0]!.key!.equals(a.sas[1]!.key!)).toBe(false);
    // A sends to B with the state of the primary key.
    const outAB = a.policies.find((p) => p.dir === 'out' && p.dst === B)!;
    expect(outAB.tmpl!.spi).toBe(spiOf(net, 1, A, B));
    // Another network with the same key material has other SPIs.
    expect(spiOf('cd'.repeat(32), 1, A, B)).not.toBe(spiOf(net, 1, A, B));
  });

  it('without keys: only the policies that keep clear VXLAN out, in and out', () => {
    const w = wanted(at(A), [B]);
    expect(w.sas).toEqual([]);
    expect(w.policies).toEqual([
      expect.objectContaining({ dir: 'in', src: '0.0.0.0/0', dst: A, dport: 4800 }),
      expect.objectContaining({ dir: 'out', src: A, dst: '0.0.0.0/0', action: 'block', priority: 200 }),
    ]);
  });

  it('a rotation: the new states first, then the policies move, then the old states go', async () => {
    const kernel = fakeXfrm();
    await applyTunnel(kernel.x, at(A), [B], { keys: [k(1)], primary: 1 });
    kernel.log.length = 0;
    await applyTunnel(kernel.x, at(A), [B], { keys: [k(1), k(2)], primary: 1 });
    expect(kernel.log).toEqual([`put ${A}>${B}#${spiOf(net, 2, A, B)}`, `put ${B}>${A}#${spiOf(net, 2, B, A)}`]);
    kernel.log.length = 0;
    await applyTunnel(kernel.x, at(A), [B], { keys: [k(1), k(2)], primary: 2 });
    expect(kernel.log).toEqual([`policy out ${A} ${B} spi ${spiOf(net, 2, A, B)}`]);
    kernel.log.length = 0;
    await applyTunnel(kernel.x, at(A), [B], { keys: [k(2)], primary: 2 });
    expect(kernel.log.sort()).toEqual(
      [`delete ${A}>${B}#${spiOf(net, 1, A, B)}`, `delete ${B}>${A}#${spiOf(net, 1, B, A)}`].sort(),
    );
    // Nothing to do is nothing done; without keys nothing of the peers' is taken away.
    kernel.log.length = 0;
    await applyTunnel(kernel.x, at(A), [B], { keys: [k(2)], primary: 2 });
    await applyTunnel(kernel.x, at(A), [B]);
    expect(kernel.log).toEqual([]);
    // A peer gone: its policy goes, its states stay as long as their key (were they made again,
    // their sequence numbers would start over, and the peer's anti-replay window drop them).
    await applyTunnel(kernel.x, at(A), [], { keys: [k(2)], primary: 2 });
    expect(kernel.log).toEqual([`delete policy out ${A} ${B}`]);
    expect(kernel.sas.size).toBe(2);
    kernel.log.length = 0;
    await applyTunnel(kernel.x, at(A), [B], { keys: [k(2)], primary: 2 });
    expect(kernel.log).toEqual([`policy out ${A} ${B} spi ${spiOf(net, 2, A, B)}`]);
    // The key gone (a rotation): its states go, the peer's with them.
    await applyTunnel(kernel.x, at(A), [], { keys: [k(3)], primary: 3 });
    expect(kernel.sas.size).toBe(0);
  });

  it("a peer without containers keeps its states while it is alive; a dead one's go, of every key", async () => {
    const kernel = fakeXfrm();
    const keys = (held: string[]) => ({ keys: [k(1), k(2)], primary: 2, held: new Map(held.map((h) => [h, [1, 2]])) });
    await applyTunnel(kernel.x, at(A), [B], keys([B]));
    expect(kernel.sas.size).toBe(4);
    await applyTunnel(kernel.x, at(A), [], keys([B]));
    expect(kernel.sas.size).toBe(4);
    // B judged gone (as a key was added, say: this host made its states before): none is kept.
    await applyTunnel(kernel.x, at(A), [], keys([]));
    expect(kernel.sas.size).toBe(0);
  });
});

function fakeXfrm() {
  const sas = new Map<string, Sa>();
  const policies = new Map<string, Policy>();
  const log: string[] = [];
  const sid = (s: Pick<Sa, 'src' | 'dst' | 'spi'>) => `${s.src}>${s.dst}#${s.spi}`;
  const pid = (p: Pick<Policy, 'dir' | 'src' | 'dst'>) => `${p.dir} ${p.src} ${p.dst}`;
  const x = {
    sas: async () => [...sas.values()].map(({ key: _, ...s }) => s),
    policies: async () => [...policies.values()],
    putSa: async (s: Sa) => {
      log.push(`put ${sid(s)}`);
      sas.set(sid(s), s);
    },
    deleteSa: async (s: Sa) => {
      log.push(`delete ${sid(s)}`);
      sas.delete(sid(s));
    },
    putPolicy: async (p: Policy) => {
      if (p.tmpl?.reqid && p.dst !== '0.0.0.0/0' && p.src !== '0.0.0.0/0')
        log.push(`policy ${pid(p)} spi ${p.tmpl.spi}`);
      policies.set(pid(p), p);
    },
    deletePolicy: async (p: Policy) => {
      log.push(`delete policy ${pid(p)}`);
      policies.delete(pid(p));
    },
  } as unknown as Xfrm;
  return { x, log, sas };
}
