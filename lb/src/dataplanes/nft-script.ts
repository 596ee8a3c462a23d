// The nft(8) scripts of the nftables data plane, as plain text from plain data: pure
// functions, unit-tested without root. nftables.ts feeds them to nft, which applies a whole
// script as one transaction (nft(8): "the whole ruleset is applied atomically").
//
// Layout. kube-proxy's nftables proxier gives every service its own chains and numgen vmap; on
// this kernel that degrades badly at 10,000 services (the kernel walks every set of a table when
// one is added: DESIGN.md, "Facts tried"). Here the chains are fixed and a few TABLE-WIDE maps
// with concatenated keys hold every service, so adding a backend is one element or two:
//
//   table inet cnmd_lb
//     map svc4/svc6     vip . proto . port : mark        ported services
//     map vips4/vips6   vip : mark                       services of every port (fwmark-style)
//     map counts        mark : verdict                   "jump <sched>_<a|p|t>_<N>": N live slots
//     map slots4/slots6 mark . index : address           index 0..N-1 -> backend (port kept)
//     map slotp4/slotp6 mark . index : address . port    the same, for a one-port service that
//                                                        translates its port (the common case)
//     map tport4/tport6 vip . proto . port : port        target ports of a service with several
//     map weights4/weights6 mark . address : weight      read back: weights the slots cannot tell
//     map info          mark : scheduler code            read back: services with no live slot
//     chain prerouting  nat, dstnat   mark by VIP (and port), then jump by the counts map
//     chain postrouting nat, srcnat   masquerade what we DNATed: replies come back through
//                                     the LB sandbox, as libnetwork's SNAT after IPVS does
//     chain rr_a_3 ...  made when first needed, shared by every service with 3 slots:
//                       ct mark set (numgen inc | jhash saddr) mod 3,
//                       dnat to meta mark . ct mark map @slots...
//
// A numgen counter belongs to its rule, so services with the same slot count share one: each
// still spreads evenly, but strict turn-taking holds per chain, not per service (README).
import { canonical } from '../ip.js';
import { slots } from '../slots.js';
import type { Scheduler, VirtualService } from '../types.js';

export const TABLE = 'cnmd_lb';
export const T = `inet ${TABLE}`;

export const SCHED_CODE: Record<Scheduler, number> = { rr: 0, wrr: 1, lc: 2, sh: 3 };

export const MAPS: Record<string, string> = {
  svc4: 'type ipv4_addr . inet_proto . inet_service : mark;',
  svc6: 'type ipv6_addr . inet_proto . inet_service : mark;',
  vips4: 'type ipv4_addr : mark;',
  vips6: 'type ipv6_addr : mark;',
  counts: 'type mark : verdict;',
  // The index is a mark too: the slot chain puts it in the ct mark. A `typeof ... numgen` key
  // would do without, but nftables 1.0.6 then refuses a rule on a map read back from the
  // kernel with a port in its value ("conflicting protocols specified: tcp vs. th").
  slots4: 'type mark . mark : ipv4_addr;',
  slots6: 'type mark . mark : ipv6_addr;',
  slotp4: 'type mark . mark : ipv4_addr . inet_service;',
  slotp6: 'type mark . mark : ipv6_addr . inet_service;',
  tport4: 'type ipv4_addr . inet_proto . inet_service : inet_service;',
  tport6: 'type ipv6_addr . inet_proto . inet_service : inet_service;',
  weights4: 'type mark . ipv4_addr : mark;',
  weights6: 'type mark . ipv6_addr : mark;',
  info: 'type mark : mark;',
};

/** One service's elements as a flat list (map, key, value, map, key, value...): 10,000
 * services make 50,000 elements, and a Map or tuple each would keep the collector busy. `fp`
 * tells an unchanged service without comparing elements ('' when read from the kernel). */
export interface ServiceState {
  fp: string;
  els: string[];
  /** The object last applied when it was frozen (LoadBalancer freezes what it sends): the same
   * object again is the same service, with no fingerprint to build. */
  src?: VirtualService;
}

export interface Held {
  services: Map<number, ServiceState>;
  chains: Set<string>;
}

export const emptyHeld = (): Held => ({ services: new Map(), chains: new Set() });

export function skeleton(): string[] {
  return [
    `add table ${T}`,
    ...Object.entries(MAPS).map(([n, t]) => `add map ${T} ${n} { ${t} }`),
    `add chain ${T} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    `add chain ${T} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    // A port-specific entry wins over an every-port one (validation keeps them from meeting).
    `add rule ${T} prerouting meta mark set ip daddr map @vips4`,
    `add rule ${T} prerouting meta mark set ip6 daddr map @vips6`,
    `add rule ${T} prerouting meta mark set ip daddr . meta l4proto . th dport map @svc4`,
    `add rule ${T} prerouting meta mark set ip6 daddr . meta l4proto . th dport map @svc6`,
    `add rule ${T} prerouting meta mark vmap @counts`,
    // Only what a slot chain DNATed carries a mark and a dnat status here.
    `add rule ${T} postrouting meta mark != 0 ct status dnat masquerade`,
  ];
}

export const dropTable = (): string[] => [`table ${T}`, `delete table ${T}`];

/** The slot chain `<sched>_<kind>_<n>`: kind `a` keeps the destination port, `p` takes it from
 * the slot, `t` from the tport map. sh hashes the source (jhash), the others count (numgen). */
export function chainRules(name: string): string[] {
  const [sched, kind, n] = name.split('_') as [Scheduler, 'a' | 'p' | 't', string];
  const rule = (f: '4' | '6') => {
    const ip = f === '4' ? 'ip' : 'ip6';
    const pick = sched === 'sh' ? `jhash ${ip} saddr mod ${n}` : `numgen inc mod ${n}`;
    // nft: a port in a NAT statement needs the protocol matched first.
    const l4 = kind === 'a' ? '' : ' meta l4proto { tcp, udp }';
    const map = kind === 'p' ? `slotp${f}` : `slots${f}`;
    const port = kind === 't' ? ` : ${ip} daddr . meta l4proto . th dport map @tport${f}` : '';
    const index = `ct mark set ${pick}`; // the slot this connection took: also shown by conntrack -L
    return `add rule ${T} ${name} meta nfproto ipv${f} ${index}${l4} dnat ${ip} to meta mark . ct mark map @${map}${port}`;
  };
  return [`add chain ${T} ${name}`, rule('4'), rule('6')];
}

/** Everything that decides a service's elements, as one string. */
export function fingerprint(vs: VirtualService): string {
  let fp = `${vs.vip}|${vs.scheduler}|`;
  for (const p of vs.ports) fp += `${p.proto}/${p.port}/${p.targetPort ?? ''},`;
  fp += '|';
  for (const b of vs.backends) fp += `${b.address}=${b.weight},`;
  return fp;
}

/** The elements of one service. The read-back maps are sparse, to keep a full sync small:
 * `weights` only where the slots do not tell the weight (drained backends, weights reduced by
 * their common divisor or not shown by rr), `info` only where no counts entry names the chain. */
export function serviceElements(vs: VirtualService, fp = fingerprint(vs)): ServiceState & { chain?: string } {
  const els: string[] = [];
  const vip = canonical(vs.vip)!;
  const f = vip.includes(':') ? '6' : '4';
  const m = String(vs.mark);
  const moved = vs.ports.filter((p) => p.targetPort !== undefined && p.targetPort !== p.port);
  const kind = moved.length === 0 ? 'a' : vs.ports.length === 1 ? 'p' : 't';
  if (vs.ports.length === 0) els.push(`vips${f}`, vip, m);
  for (const p of vs.ports) {
    const k = `${vip} . ${p.proto} . ${p.port}`;
    els.push(`svc${f}`, k, m);
    if (kind === 't') els.push(`tport${f}`, k, String(p.targetPort ?? p.port));
  }
  const s = slots(vs);
  if (vs.scheduler === 'rr' || vs.scheduler === 'lc') {
    // The slots show each live backend once, as weight 1: the others are written down.
    for (const b of vs.backends)
      if (b.weight !== 1) els.push(`weights${f}`, `${m} . ${canonical(b.address)}`, String(b.weight));
  } else {
    const implied = new Map<string, number>();
    for (const a of s) implied.set(a, (implied.get(a) ?? 0) + 1);
    for (const b of vs.backends) {
      if (implied.get(b.address) !== b.weight)
        els.push(`weights${f}`, `${m} . ${canonical(b.address)}`, String(b.weight));
    }
  }
  const out: ServiceState & { chain?: string } = { fp, els };
  if (s.length === 0) {
    els.push('info', m, String(SCHED_CODE[vs.scheduler])); // no live backend: the VIP refuses
    return out;
  }
  out.chain = `${vs.scheduler}_${kind}_${s.length}`;
  els.push('counts', m, `jump ${out.chain}`);
  const to = kind === 'p' ? ` . ${vs.ports[0]!.targetPort}` : '';
  for (let i = 0; i < s.length; i++)
    els.push(kind === 'p' ? `slotp${f}` : `slots${f}`, `${m} . ${i}`, canonical(s[i])! + to);
  return out;
}

export const script = (lines: string[]): string => (lines.length ? `${lines.join('\n')}\n` : '');
