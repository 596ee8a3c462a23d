// The nft(8) scripts of the nftables data plane, as plain text from plain data: pure
// functions, unit-tested without root. nftables.ts feeds them to `nft -f -`, which applies a
// whole script as one transaction (nft(8): "the whole ruleset is applied atomically").
//
// Layout. kube-proxy's nftables proxier gives every service its own chain and numgen vmap; on
// this kernel that degrades badly at 10,000 services (the kernel walks every set of a table when
// one is added: DESIGN.md, "Facts tried"). Here the chains are fixed and a few TABLE-WIDE maps
// with concatenated keys hold every service, so adding a backend is a few elements:
//
//   table inet cnmd_lb
//     map svc4/svc6     vip . proto . port : mark        ported services
//     map vips4/vips6   vip : mark                       services of every port (fwmark-style)
//     map tport4/tport6 vip . proto . port : port        target ports, for services that translate
//     map counts        mark : verdict                   "jump <scheduler>_<a|p>_<N>": N live slots
//     map slots4/slots6 mark . index : address           index 0..N-1 -> backend
//     map info          mark : scheduler code            read back: the scheduler of each service
//     map weights4/weights6 mark . address : weight      read back: every backend, drained too
//     chain prerouting  nat, dstnat   mark by VIP (and port), then jump by the counts map
//     chain postrouting nat, srcnat   masquerade what we DNATed: replies come back through
//                                     the LB sandbox, as libnetwork's SNAT after IPVS does
//     chain rr_a_3 ...  created when first needed, shared by every service with 3 slots:
//                       dnat to mark . (numgen inc | jhash saddr) mod 3 map @slotsN [: tport]
//
// A numgen counter belongs to its rule, so services with the same slot count share one: each
// service still spreads evenly, but strict turn-taking holds only per chain (README).
import { canonical } from '../ip.js';
import { slots } from '../slots.js';
import type { Scheduler, VirtualService } from '../types.js';

export const TABLE = 'cnmd_lb';
const T = `inet ${TABLE}`;

const SCHED_CODE: Record<Scheduler, number> = { rr: 0, wrr: 1, lc: 2, sh: 3 };
const SCHED_OF = Object.fromEntries(Object.entries(SCHED_CODE).map(([k, v]) => [v, k])) as Record<number, Scheduler>;

const MAPS: Record<string, string> = {
  svc4: 'type ipv4_addr . inet_proto . inet_service : mark;',
  svc6: 'type ipv6_addr . inet_proto . inet_service : mark;',
  vips4: 'type ipv4_addr : mark;',
  vips6: 'type ipv6_addr : mark;',
  tport4: 'type ipv4_addr . inet_proto . inet_service : inet_service;',
  tport6: 'type ipv6_addr . inet_proto . inet_service : inet_service;',
  counts: 'type mark : verdict;',
  slots4: 'typeof meta mark . numgen inc mod 2 : ip daddr;',
  slots6: 'typeof meta mark . numgen inc mod 2 : ip6 daddr;',
  info: 'type mark : mark;',
  weights4: 'type mark . ipv4_addr : mark;',
  weights6: 'type mark . ipv6_addr : mark;',
};

/** The elements of every map, keyed `map|key` with the value as nft prints it in a script. */
export type Elements = Map<string, string>;

export interface Held {
  elements: Elements;
  chains: Set<string>;
}

export const emptyHeld = (): Held => ({ elements: new Map(), chains: new Set() });

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
    `add rule ${T} postrouting meta mark != 0 ct status dnat masquerade`,
  ];
}

export const dropTable = (): string[] => [`table ${T}`, `delete table ${T}`];

/** The slot chain `<sched>_<a|p>_<n>`: `a` keeps the destination port, `p` translates it. */
export function chainRules(name: string): string[] {
  const [sched, kind, n] = name.split('_') as [Scheduler, 'a' | 'p', string];
  const pick = (f: 4 | 6) =>
    sched === 'sh' ? `jhash ${f === 4 ? 'ip' : 'ip6'} saddr mod ${n}` : `numgen inc mod ${n}`;
  const rule = (f: 4 | 6) => {
    const [ip, s] = f === 4 ? ['ip', '4'] : ['ip6', '6'];
    const port = kind === 'p' ? ` : ${ip} daddr . meta l4proto . th dport map @tport${s}` : '';
    const l4 = kind === 'p' ? ' meta l4proto { tcp, udp }' : '';
    return `add rule ${T} ${name} meta nfproto ipv${s}${l4} dnat ${ip} to meta mark . ${pick(f)} map @slots${s}${port}`;
  };
  return [`add chain ${T} ${name}`, rule(4), rule(6)];
}

/** What the table holds when it holds exactly `desired`. */
export function desiredState(desired: readonly VirtualService[]): Held {
  const held = emptyHeld();
  const put = (map: string, key: string, value: string) => held.elements.set(`${map}|${key}`, value);
  for (const vs of desired) {
    const vip = canonical(vs.vip)!;
    const f = vip.includes(':') ? '6' : '4';
    const m = String(vs.mark);
    const translates = vs.ports.some((p) => p.targetPort !== undefined && p.targetPort !== p.port);
    if (vs.ports.length === 0) put(`vips${f}`, vip, m);
    for (const p of vs.ports) {
      const k = `${vip} . ${p.proto} . ${p.port}`;
      put(`svc${f}`, k, m);
      if (translates) put(`tport${f}`, k, String(p.targetPort ?? p.port));
    }
    put('info', m, String(SCHED_CODE[vs.scheduler]));
    for (const b of vs.backends) put(`weights${f}`, `${m} . ${canonical(b.address)}`, String(b.weight));
    const s = slots(vs);
    if (s.length === 0) continue; // no live backend: the VIP answers as a local address (refused)
    const chain = `${vs.scheduler}_${translates ? 'p' : 'a'}_${s.length}`;
    held.chains.add(chain);
    put('counts', m, `jump ${chain}`);
    for (const [i, a] of s.entries()) put(`slots${f}`, `${m} . ${i}`, canonical(a)!);
  }
  return held;
}

const CHUNK = 2000;

function elementLines(verb: 'add' | 'delete', entries: [string, string | undefined][]): string[] {
  const byMap = new Map<string, string[]>();
  for (const [k, v] of entries) {
    const [map, key] = k.split('|') as [string, string];
    let list = byMap.get(map);
    if (!list) byMap.set(map, (list = []));
    list.push(v === undefined ? key : `${key} : ${v}`);
  }
  const out: string[] = [];
  for (const [map, list] of byMap) {
    for (let i = 0; i < list.length; i += CHUNK) {
      out.push(`${verb} element ${T} ${map} { ${list.slice(i, i + CHUNK).join(', ')} }`);
    }
  }
  return out;
}

export interface Diff {
  lines: string[];
  added: number;
  changed: number;
  removed: number;
}

/** The transaction from `held` to `want`: new chains first (elements jump to them), then the
 * elements that go or change value (a map element is replaced by delete and add), then the
 * new ones. Chains no longer used stay: they cost nothing and a later service reuses them. */
export function diff(held: Held, want: Held): Diff {
  const lines: string[] = [];
  for (const c of want.chains) if (!held.chains.has(c)) lines.push(...chainRules(c));
  const del: [string, undefined][] = [];
  const add: [string, string][] = [];
  let changed = 0;
  for (const [k, v] of held.elements) {
    const w = want.elements.get(k);
    if (w === v) continue;
    del.push([k, undefined]);
    if (w !== undefined) changed++;
  }
  for (const [k, v] of want.elements) if (held.elements.get(k) !== v) add.push([k, v]);
  lines.push(...elementLines('delete', del), ...elementLines('add', add));
  return { lines, added: add.length - changed, changed, removed: del.length - changed };
}

export const script = (lines: string[]): string => (lines.length ? `${lines.join('\n')}\n` : '');

type Json = Record<string, unknown>;

/** The table as `nft -j list table inet cnmd_lb` prints it, in the form desiredState builds. */
export function parseListing(json: string): Held {
  const held = emptyHeld();
  const items = (JSON.parse(json) as { nftables: Json[] }).nftables;
  const text = (v: unknown): string => {
    if (typeof v === 'number') return String(v);
    if (typeof v === 'string') return canonical(v) ?? v;
    const o = v as Json;
    if (o.concat) return (o.concat as unknown[]).map(text).join(' . ');
    if (o.jump) return `jump ${(o.jump as Json).target}`;
    throw new Error(`unexpected element ${JSON.stringify(v)}`);
  };
  for (const it of items) {
    const chain = it.chain as Json | undefined;
    if (chain && /^(rr|wrr|lc|sh)_[ap]_\d+$/.test(chain.name as string)) held.chains.add(chain.name as string);
    const map = it.map as Json | undefined;
    if (!map || !((map.name as string) in MAPS)) continue;
    for (const [k, v] of (map.elem as [unknown, unknown][] | undefined) ?? []) {
      held.elements.set(`${map.name}|${text(k)}`, text(v));
    }
  }
  return held;
}

/** The services a table holds, read back from its maps. */
export function servicesOf(held: Held): VirtualService[] {
  const byMark = new Map<string, VirtualService>();
  const get = (m: string) => {
    let vs = byMark.get(m);
    if (!vs) byMark.set(m, (vs = { mark: Number(m), vip: '', ports: [], scheduler: 'rr', backends: [] }));
    return vs;
  };
  const tports = new Map<string, number>();
  for (const [k, v] of held.elements) {
    const [map, key] = k.split('|') as [string, string];
    if (map.startsWith('tport')) tports.set(key, Number(v));
  }
  for (const [k, v] of held.elements) {
    const [map, key] = k.split('|') as [string, string];
    const parts = key.split(' . ');
    if (map.startsWith('vips')) get(v).vip = key;
    else if (map.startsWith('svc')) {
      const vs = get(v);
      vs.vip = parts[0]!;
      const port = Number(parts[2]);
      const t = tports.get(key);
      vs.ports.push(
        t === undefined || t === port
          ? { proto: parts[1] as 'tcp', port }
          : { proto: parts[1] as 'tcp', port, targetPort: t },
      );
    } else if (map === 'info') get(key).scheduler = SCHED_OF[Number(v)] ?? 'rr';
    else if (map.startsWith('weights')) get(parts[0]!).backends.push({ address: parts[1]!, weight: Number(v) });
  }
  const out = [...byMark.values()];
  for (const vs of out) {
    vs.ports.sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port);
    vs.backends.sort((a, b) => a.address.localeCompare(b.address));
  }
  return out.sort((a, b) => a.mark - b.mark);
}
