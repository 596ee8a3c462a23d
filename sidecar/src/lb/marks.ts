// The iptables side of an IPVS load-balancer sandbox, as libnetwork programs it (its
// service_linux.go): a mangle rule per VIP (and port) sets the service's firewall mark, which
// keys its IPVS fwmark service, and a nat rule SNATs what IPVS forwards into the network to the
// sandbox's own address, so a backend's reply comes back through the sandbox rather than
// straight to a client on the same subnet. Pure text for iptables-restore --noflush: only cnmd's
// chains are declared (which flushes and rewrites them in one transaction), and the jumps into
// them from the built-in chains are inserted once, when missing.
import type { ServicePort } from '@cnmd/lb';

/** cnmd's chains: mangle (jumped to from PREROUTING and OUTPUT) and nat (from POSTROUTING). */
export const MARK_CHAIN = 'CNMD-LB-MARK';
export const SNAT_CHAIN = 'CNMD-LB-SNAT';

export type IpFamily = 4 | 6;

/** A service's VIP and ports, and the mark its packets get (a VirtualService has these). */
export interface MarkedVip {
  mark: number;
  vip: string;
  /** Empty: every packet to the VIP is marked. */
  ports: readonly ServicePort[];
}

/** Packets IPVS forwards into `subnet` leave from `source` (the LB sandbox's endpoint address). */
export interface Snat {
  subnet: string;
  source: string;
}

/** The jumps into cnmd's chains that the built-in chains lack (from `missingJumps`). */
export interface Jumps {
  prerouting: boolean;
  output: boolean;
  postrouting: boolean;
}

export const familyOf = (address: string): IpFamily => (address.includes(':') ? 6 : 4);

/**
 * The iptables-restore (ip6tables-restore for 6) input that makes cnmd's chains hold exactly
 * these marks and SNATs, for one family: services and SNATs of the other family are left out.
 */
export function markRules(family: IpFamily, services: readonly MarkedVip[], snat: readonly Snat[], add: Jumps): string {
  const host = family === 4 ? 32 : 128;
  const lines = ['*mangle', `:${MARK_CHAIN} - [0:0]`];
  if (add.prerouting) lines.push(`-I PREROUTING 1 -j ${MARK_CHAIN}`);
  if (add.output) lines.push(`-I OUTPUT 1 -j ${MARK_CHAIN}`);
  for (const s of [...services].sort((a, b) => a.mark - b.mark)) {
    if (familyOf(s.vip) !== family) continue;
    const set = `-j MARK --set-xmark 0x${s.mark.toString(16)}/0xffffffff`;
    if (s.ports.length === 0) lines.push(`-A ${MARK_CHAIN} -d ${s.vip}/${host} ${set}`);
    for (const p of s.ports)
      lines.push(`-A ${MARK_CHAIN} -d ${s.vip}/${host} -p ${p.proto} -m ${p.proto} --dport ${p.port} ${set}`);
  }
  lines.push('COMMIT', '*nat', `:${SNAT_CHAIN} - [0:0]`);
  if (add.postrouting) lines.push(`-I POSTROUTING 1 -j ${SNAT_CHAIN}`);
  for (const s of snat) {
    if (familyOf(s.source) === family)
      lines.push(`-A ${SNAT_CHAIN} -d ${s.subnet} -m ipvs --ipvs -j SNAT --to-source ${s.source}`);
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** Which jumps into cnmd's chains an `iptables-save -t mangle -t nat` listing lacks. */
export function missingJumps(saved: string): Jumps {
  let table = '';
  const has = { mangle: new Set<string>(), nat: new Set<string>() };
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const m = /^-A (\S+) -j (CNMD-LB-\S+)\s*$/.exec(line.trim());
    if (m && (table === 'mangle' || table === 'nat')) has[table].add(`${m[1]} ${m[2]}`);
  }
  return {
    prerouting: !has.mangle.has(`PREROUTING ${MARK_CHAIN}`),
    output: !has.mangle.has(`OUTPUT ${MARK_CHAIN}`),
    postrouting: !has.nat.has(`POSTROUTING ${SNAT_CHAIN}`),
  };
}

/** Whether a listing holds any of cnmd's chains (left by a daemon before a restart). */
export function hasChains(saved: string): boolean {
  return saved.split('\n').some((l) => l.startsWith(`:${MARK_CHAIN} `) || l.startsWith(`:${SNAT_CHAIN} `));
}
