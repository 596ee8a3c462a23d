// An encrypted overlay's IPsec on this host (libnetwork's drivers/overlay/encryption.go, over
// XFRM netlink): ESP in transport mode between this host's underlay address and each peer's, for
// the UDP packets to the network's own VXLAN port, so only this network's traffic is encrypted.
//   in:  one policy: a packet to the port must have come through one of the network's states,
//        from anywhere (clear VXLAN to it is dropped, whoever sends it);
//   out: per peer a policy that sends through the state of the primary key (its SPI named),
//        and under them one that blocks the port: nothing leaves in clear, even to a peer
//        whose states are not written yet;
//   states: per peer and key, one each way. Their SPIs and keys are derived from the network's
//        key, its tag, and the two addresses (HKDF-SHA256), so both hosts compute the same, and
//        no two states share a key. A state lives as long as its key: a peer that goes loses its
//        policy, not its states, so that if it comes back both ends go on where their sequence
//        numbers were (a state made again would start over, and its peer's anti-replay window
//        would drop what it sends). A host that leaves the cluster has its states removed by the
//        rotation that its leaving starts (cluster/keys.ts), and at once from every host that
//        judges it gone (NetworkKeys.held: the live hosts that hold the keys).
// What the kernel holds is read and brought to what is wanted by difference: new states, then
// policies, then what went (a rotation's order). The network's states carry its VNI as reqid.
import { createHash, hkdfSync } from 'node:crypto';
import type { Policy, Sa } from '../../kernel/xfrm/messages.js';
import type { Xfrm } from '../../kernel/xfrm/xfrm.js';
import type { NetworkKeys } from '../../network/driver.js';

/** The kernel takes the matching policy of the lowest priority: a peer's before the block. */
const PRIORITY = 100;
const BLOCK_PRIORITY = 200;
const ANY = '0.0.0.0/0';

/** One network's tunnel ends on this host. */
export interface Tunnel {
  network: string;
  /** Its VNI: the reqid of its states and policies. */
  reqid: number;
  /** Its VXLAN port: what its policies match. */
  port: number;
  /** This host's underlay address. */
  local: string;
}

/** The SPI of a state of the network, with key `tag`, from `src` to `dst` (never below 256). */
export function spiOf(network: string, tag: number, src: string, dst: string): number {
  const h = createHash('sha256').update(`cnmd-spi|${network}|${tag}|${src}|${dst}`).digest();
  return Math.max(256, h.readUInt32BE(0));
}

/** A state's key: 16 bytes of AES-128 and 4 of salt (rfc4106), its own. */
export function stateKey(key: Buffer, spi: number, src: string, dst: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `cnmd-esp|${spi}|${src}|${dst}`, 20));
}

/** The states and policies a network wants with these peers; without keys (not known yet,
 * NATS away) only the two that keep clear traffic out. */
export function wanted(t: Tunnel, peers: string[], keys?: NetworkKeys): { sas: Sa[]; policies: Policy[] } {
  const policies: Policy[] = [
    {
      src: ANY,
      dst: t.local,
      dir: 'in',
      dport: t.port,
      priority: PRIORITY,
      tmpl: { src: '0.0.0.0', dst: '0.0.0.0', reqid: t.reqid, spi: 0 },
    },
    { src: t.local, dst: ANY, dir: 'out', dport: t.port, priority: BLOCK_PRIORITY, action: 'block' },
  ];
  const sas: Sa[] = [];
  if (!keys) return { sas, policies };
  for (const peer of peers) {
    for (const k of keys.keys) {
      for (const [src, dst] of [
        [t.local, peer],
        [peer, t.local],
      ] as const) {
        const spi = spiOf(t.network, k.tag, src, dst);
        sas.push({ src, dst, spi, reqid: t.reqid, key: stateKey(k.key, spi, src, dst) });
      }
    }
    policies.push({
      src: t.local,
      dst: peer,
      dir: 'out',
      dport: t.port,
      priority: PRIORITY,
      tmpl: { src: t.local, dst: peer, reqid: t.reqid, spi: spiOf(t.network, keys.primary, t.local, peer) },
    });
  }
  return { sas, policies };
}

const saId = (s: Sa) => `${s.src}>${s.dst}#${s.spi}`;
const policyId = (p: Policy) => `${p.dir} ${p.src} ${p.dst}`;
const samePolicy = (a: Policy, b: Policy) =>
  a.priority === b.priority &&
  (a.action ?? 'allow') === (b.action ?? 'allow') &&
  a.tmpl?.spi === b.tmpl?.spi &&
  a.tmpl?.reqid === b.tmpl?.reqid &&
  a.tmpl?.src === b.tmpl?.src &&
  a.tmpl?.dst === b.tmpl?.dst;

/**
 * Brings the kernel to what the network wants: the states of its reqid and the policies of its
 * port that are not wanted go, after what is new is in. Without keys, states and peers'
 * policies are left as they are (a restart before the cluster answers keeps traffic flowing).
 */
export async function applyTunnel(x: Xfrm, t: Tunnel, peers: string[], keys?: NetworkKeys): Promise<void> {
  const want = wanted(t, peers, keys);
  const haveSas = new Map((await x.sas()).filter((s) => s.reqid === t.reqid).map((s) => [saId(s), s]));
  const havePolicies = new Map((await x.policies()).filter((p) => p.dport === t.port).map((p) => [policyId(p), p]));
  const wantSas = new Set(want.sas.map(saId));
  const wantPolicies = new Set(want.policies.map(policyId));
  for (const s of want.sas) if (!haveSas.has(saId(s))) await x.putSa(s);
  for (const p of want.policies) {
    const had = havePolicies.get(policyId(p));
    if (!had || !samePolicy(had, p)) await x.putPolicy(p);
  }
  if (!keys) return;
  for (const [id, p] of havePolicies) if (!wantPolicies.has(id)) await x.deletePolicy(p);
  // A state of a current key stays, with or without its peer, while the peer is alive; those of
  // keys gone go, and those of a dead peer (that died as a key was added, this host may have
  // made the new key's states for it before it judged it gone: the rotation would not take them).
  const kept = (s: Sa) => {
    const peer = s.src === t.local ? s.dst : s.src;
    const current = keys.keys.some((k) => spiOf(t.network, k.tag, s.src, s.dst) === s.spi);
    return current && (keys.held === undefined || keys.held.has(peer));
  };
  for (const [id, s] of haveSas) if (!wantSas.has(id) && !kept(s)) await x.deleteSa(s);
}

/** Whether the kernel holds none of the network's states: made anew, or lost (a reboot). */
export async function noStates(x: Xfrm, t: Pick<Tunnel, 'reqid'>): Promise<boolean> {
  return !(await x.sas()).some((s) => s.reqid === t.reqid);
}

/** Removes everything of the network's: its policies, then its states. */
export async function removeTunnel(x: Xfrm, t: Pick<Tunnel, 'reqid' | 'port'>): Promise<void> {
  for (const p of await x.policies()) if (p.dport === t.port) await x.deletePolicy(p);
  for (const s of await x.sas()) if (s.reqid === t.reqid) await x.deleteSa(s);
}
