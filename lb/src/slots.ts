// The slots of a service: the sequence of backend addresses that a numgen or jhash index
// picks from (nft(8) NUMGEN EXPRESSION: "numgen inc mod N" counts 0..N-1 in turn). One slot per
// backend for rr (and lc, which nftables cannot do: it has no connection counts to compare),
// as IPVS's rr ignores weights other than 0; for wrr and sh a backend gets slots in proportion
// to its weight, interleaved the way IPVS's wrr interleaves (nginx's smooth weighted round
// robin gives the same order), so that weights 3:1 read A A B A rather than A A A B.
import type { VirtualService } from './types.js';

/** More slots would cost map elements for every weight change; weights are scaled to fit. */
export const MAX_SLOTS = 64;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

export function slots(vs: VirtualService): string[] {
  if (vs.scheduler === 'rr' || vs.scheduler === 'lc') {
    const out: string[] = [];
    for (const b of vs.backends) if (b.weight > 0) out.push(b.address);
    return out;
  }
  const live = vs.backends.filter((b) => b.weight > 0);
  let weights = live.map((b) => b.weight);
  const g = weights.reduce(gcd, 0) || 1;
  weights = weights.map((w) => w / g);
  const total = weights.reduce((a, w) => a + w, 0);
  if (total > MAX_SLOTS) {
    // Every live backend keeps at least one slot; the rest is shared in proportion.
    weights = weights.map((w) => Math.max(1, Math.floor((w * (MAX_SLOTS - live.length)) / total)));
  }
  const n = weights.reduce((a, w) => a + w, 0);
  const current = weights.map(() => 0);
  const out: string[] = [];
  for (let s = 0; s < n; s++) {
    let best = 0;
    for (let i = 0; i < weights.length; i++) {
      current[i]! += weights[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= n;
    out.push(live[best]!.address);
  }
  return out;
}
