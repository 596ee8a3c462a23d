// The nft(8) scripts of cnmd's firewall, as plain text: pure functions, unit-tested without
// root; nftables.ts feeds them to `nft -f -`, which applies a whole script as one transaction
// (nft(8): "the whole ruleset is applied atomically").
//
// Layout. The chains are fixed and never change with the networks; what a network or a port
// adds is a few elements of table-wide sets and maps (DESIGN.md: no set or map per object), so
// adding or removing one is a handful of `add element` / `delete element` lines.
//
//   table inet cnmd                 filter and NAT, IPv4 and IPv6 (inet NAT: Linux 5.2)
//     set bridges    ifname            every cnmd bridge
//     set samebr     ifname . ifname   "br" . "br": inside one network
//     set internal   ifname            --internal networks
//     set noicc      ifname            icc=false networks
//     set nat4/nat6  ifname . prefix   the bridge and subnet of networks that masquerade out
//     set subnets4/subnets6 ifname . prefix   the bridge and subnet of every network
//     map ports4/ports6       proto . host address . host port : address . port
//     map ports4any/ports6any proto . host port : address . port   (published on all addresses)
//     chain raw          prerouting, raw      drop 127.0.0.0/8 arriving on a bridge
//     chain forward      forward, filter      isolation, internal, icc, published ports
//     chain prerouting   prerouting, dstnat   local destinations: jump published
//     chain output       output, -100         the host's own packets, 127.0.0.1 too
//     chain published    the DNAT of published ports, from the maps
//     chain postrouting  postrouting, srcnat  masquerade out, from localhost, hairpin
//   table bridge cnmd               icc=false between ports of one bridge
//     set noicc (meta ibrname) or noicc4/noicc6 (subnet . subnet), see bridgeRules

import { formatCidr } from '@cnmd/netutil';
import type { NetEntry, PortEntry } from './state.js';

export const TABLE = 'cnmd';

export interface ScriptOptions {
  /** The kernel has `meta ibrname` in the bridge family (CONFIG_NFT_BRIDGE_META). */
  bridgeMeta: boolean;
}

/** One element of one set or map; `value` for maps. */
export interface Element {
  family: 'inet' | 'bridge';
  set: string;
  key: string;
  value?: string;
}

const q = (ifname: string): string => `"${ifname}"`;

const SETS: Record<string, string> = {
  bridges: 'type ifname;',
  samebr: 'type ifname . ifname;',
  internal: 'type ifname;',
  noicc: 'type ifname;',
  nat4: 'type ifname . ipv4_addr; flags interval;',
  nat6: 'type ifname . ipv6_addr; flags interval;',
  subnets4: 'type ifname . ipv4_addr; flags interval;',
  subnets6: 'type ifname . ipv6_addr; flags interval;',
};

const MAPS: Record<string, string> = {
  ports4: 'type inet_proto . ipv4_addr . inet_service : ipv4_addr . inet_service;',
  ports4any: 'type inet_proto . inet_service : ipv4_addr . inet_service;',
  ports6: 'type inet_proto . ipv6_addr . inet_service : ipv6_addr . inet_service;',
  ports6any: 'type inet_proto . inet_service : ipv6_addr . inet_service;',
};

const CHAINS: [name: string, hook: string | undefined, rules: string[]][] = [
  [
    // route_localnet=1 on a bridge (for published ports on 127.0.0.1) would also let a
    // container reach the host's 127.0.0.1 services by sending to 127.0.0.1 through its
    // gateway: CVE-2020-8558, which kube-proxy closes the same way. Replies to the masqueraded
    // localhost connections arrive with the gateway address here (de-NAT is at dstnat, later).
    'raw',
    'type filter hook prerouting priority raw; policy accept;',
    ['iifname @bridges ip daddr 127.0.0.0/8 drop'],
  ],
  [
    // libnetwork's FORWARD rules (its nftables layout, moby integration/network/bridge/
    // nftablesdoc): return traffic first; inside one network (a routed hairpin, or bridged
    // frames when br_netfilter hands them to this hook) only icc decides; --internal drops everything crossing its bridge; into a network only what a
    // published port DNATed (from anywhere, other networks too, as in Docker); anything else
    // into a bridge is dropped: other networks (DOCKER-ISOLATION) and unpublished ports.
    // Out of a (non-internal) network everything goes: the policy is accept.
    'forward',
    'type filter hook forward priority filter; policy accept;',
    [
      'ct state established,related accept',
      'iifname . oifname @samebr iifname @noicc drop',
      'iifname . oifname @samebr accept',
      'iifname @internal drop',
      'oifname @internal drop',
      'oifname @bridges ct status dnat accept',
      'oifname @bridges drop',
    ],
  ],
  // Docker without its userland proxy: DNAT every packet to a local address, from outside
  // (prerouting) and from the host itself (output, 127.0.0.1 included).
  ['prerouting', 'type nat hook prerouting priority dstnat; policy accept;', ['fib daddr type local jump published']],
  // nft 1.0.6 knows no `dstnat` name in the output hook: -100 is its value (nft(8) PRIORITY).
  ['output', 'type nat hook output priority -100; policy accept;', ['fib daddr type local jump published']],
  [
    'published',
    undefined,
    [
      'dnat ip to meta l4proto . ip daddr . th dport map @ports4',
      'meta nfproto ipv4 dnat ip to meta l4proto . th dport map @ports4any',
      'dnat ip6 to meta l4proto . ip6 daddr . th dport map @ports6',
      'meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @ports6any',
    ],
  ],
  [
    // 1. The host's 127.0.0.1 to a published port: the source must become the gateway, or the
    //    container's reply has nowhere to go (Docker: "MASQUERADE FROM HOST").
    // 2. Hairpin: a container to a port published by its own network comes back into the
    //    bridge; without masquerade the peer would answer directly, from an address the
    //    client never spoke to. Matched by the outgoing bridge and the source subnet, not by
    //    the incoming interface: with br_netfilter the kernel bridges a packet DNATed back to
    //    its own bridge and runs postrouting with no input device (br_netfilter_hooks.c).
    // 3. libnetwork's `-s subnet ! -o bridge -j MASQUERADE`, keyed by the bridge a packet
    //    came in on, for networks that are not internal.
    'postrouting',
    'type nat hook postrouting priority srcnat; policy accept;',
    [
      'oifname @bridges ip saddr 127.0.0.0/8 masquerade',
      'ct status dnat oifname . ip saddr @subnets4 masquerade',
      'ct status dnat oifname . ip6 saddr @subnets6 masquerade',
      'iifname . oifname != @samebr iifname . ip saddr @nat4 masquerade',
      'iifname . oifname != @samebr iifname . ip6 saddr @nat6 masquerade',
    ],
  ],
];

/** icc=false between the ports of one bridge: bridged frames never reach the inet table
 * (without br_netfilter), so the bridge family's forward hook, which sees exactly the frames
 * going from one port to another (not those to or from the host), drops them. `meta ibrname`
 * names the bridge; kernels built without CONFIG_NFT_BRIDGE_META lack it, and there the rule
 * matches IP packets whose source and destination are both in the network's subnet. Both
 * leave ARP alone, as Docker's br_netfilter rules do. */
function bridgeRules(o: ScriptOptions): { sets: Record<string, string>; rules: string[] } {
  return o.bridgeMeta
    ? { sets: { noicc: 'type ifname;' }, rules: ['meta ibrname @noicc ether type { ip, ip6 } drop'] }
    : {
        sets: {
          noicc4: 'type ipv4_addr . ipv4_addr; flags interval;',
          noicc6: 'type ipv6_addr . ipv6_addr; flags interval;',
        },
        rules: ['ip saddr . ip daddr @noicc4 drop', 'ip6 saddr . ip6 daddr @noicc6 drop'],
      };
}

/** Creates the tables, sets and chains, and (re)writes the chains' rules; elements already in
 * the sets are kept. Idempotent: `add` of an existing object is no error, and each chain is
 * flushed before its rules are added, in the same transaction. */
export function skeleton(o: ScriptOptions): string[] {
  const b = bridgeRules(o);
  const chains: [string, string, string | undefined, string[]][] = [
    ...CHAINS.map(
      ([name, hook, rules]) => ['inet', name, hook, rules] as [string, string, string | undefined, string[]],
    ),
    ['bridge', 'forward', 'type filter hook forward priority filter; policy accept;', b.rules],
  ];
  return [
    `add table inet ${TABLE}`,
    ...Object.entries(SETS).map(([name, decl]) => `add set inet ${TABLE} ${name} { ${decl} }`),
    ...Object.entries(MAPS).map(([name, decl]) => `add map inet ${TABLE} ${name} { ${decl} }`),
    `add table bridge ${TABLE}`,
    ...Object.entries(b.sets).map(([name, decl]) => `add set bridge ${TABLE} ${name} { ${decl} }`),
    // Every chain exists before any rule jumps to one.
    ...chains.map(([family, name, hook]) => `add chain ${family} ${TABLE} ${name}${hook ? ` { ${hook} }` : ''}`),
    ...chains.flatMap(([family, name, , rules]) => [
      `flush chain ${family} ${TABLE} ${name}`,
      ...rules.map((r) => `add rule ${family} ${TABLE} ${name} ${r}`),
    ]),
  ];
}

export function networkElements(n: NetEntry, o: ScriptOptions): Element[] {
  const br = q(n.spec.bridge);
  const el = (set: string, key: string, family: Element['family'] = 'inet'): Element => ({ family, set, key });
  const out = [el('bridges', br), el('samebr', `${br} . ${br}`), el('subnets4', `${br} . ${formatCidr(n.v4)}`)];
  if (n.v6) out.push(el('subnets6', `${br} . ${formatCidr(n.v6)}`));
  if (n.spec.internal) out.push(el('internal', br));
  else {
    out.push(el('nat4', `${br} . ${formatCidr(n.v4)}`));
    if (n.v6) out.push(el('nat6', `${br} . ${formatCidr(n.v6)}`));
  }
  if (!n.spec.icc) {
    out.push(el('noicc', br));
    if (o.bridgeMeta) out.push(el('noicc', br, 'bridge'));
    else {
      out.push(el('noicc4', `${formatCidr(n.v4)} . ${formatCidr(n.v4)}`, 'bridge'));
      if (n.v6) out.push(el('noicc6', `${formatCidr(n.v6)} . ${formatCidr(n.v6)}`, 'bridge'));
    }
  }
  return out;
}

export function portElements(p: PortEntry): Element {
  const { proto, hostIp, hostPort, address, port } = p.spec;
  const v = p.family === 4 ? '4' : '6';
  return hostIp === undefined
    ? { family: 'inet', set: `ports${v}any`, key: `${proto} . ${hostPort}`, value: `${address} . ${port}` }
    : { family: 'inet', set: `ports${v}`, key: `${proto} . ${hostIp} . ${hostPort}`, value: `${address} . ${port}` };
}

/** One `add element` line per set, in a stable order. */
export function addElements(els: Element[]): string[] {
  return grouped(els).map(([head, items]) => `add element ${head} { ${items.join(', ')} }`);
}

/** Deletes the elements whether or not the kernel still has them: each is added first, in
 * the same transaction (nft 1.0.6 has no `destroy element`; a `delete` of a missing element
 * would fail the whole transaction, and the state already says it should be gone). */
export function deleteElements(els: Element[]): string[] {
  return [
    ...addElements(els),
    ...grouped(els.map((e) => ({ ...e, value: undefined }))).map(
      ([head, items]) => `delete element ${head} { ${items.join(', ')} }`,
    ),
  ];
}

function grouped(els: Element[]): [string, string[]][] {
  const by = new Map<string, string[]>();
  for (const e of els) {
    const head = `${e.family} ${TABLE} ${e.set}`;
    const items = by.get(head) ?? [];
    items.push(e.value === undefined ? e.key : `${e.key} : ${e.value}`);
    by.set(head, items);
  }
  return [...by.entries()];
}

/** Removes cnmd's tables, whether or not they exist (`add` first, as in deleteElements). */
export function dropTables(): string[] {
  return ['inet', 'bridge'].flatMap((f) => [`add table ${f} ${TABLE}`, `delete table ${f} ${TABLE}`]);
}

/** The whole firewall from nothing: the tables are dropped and built again in one
 * transaction, so whatever they held that the state does not know goes, and no packet ever
 * sees them half built. */
export function replaceScript(o: ScriptOptions, nets: NetEntry[], ports: PortEntry[]): string {
  const els = [...nets.flatMap((n) => networkElements(n, o)), ...ports.map(portElements)];
  return script([...dropTables(), ...skeleton(o), ...addElements(els)]);
}

export const script = (lines: string[]): string => `${lines.join('\n')}\n`;

/** Asks the kernel (through `nft -c`, which changes nothing) whether `meta ibrname` exists. */
export const BRIDGE_META_PROBE = script([
  `add table bridge ${TABLE}-probe`,
  `add chain bridge ${TABLE}-probe forward { type filter hook forward priority filter; policy accept; }`,
  `add rule bridge ${TABLE}-probe forward meta ibrname "lo" drop`,
]);
