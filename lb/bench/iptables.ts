// The baseline: the same services as DNAT rules in kube-proxy's iptables mode (a chain per
// service, a rule per backend picked with `-m statistic --mode random --probability 1/n`, the
// last one unconditional), loaded in one full `iptables-restore` as kube-proxy's sync does.
import type { VirtualService } from '../src/types.js';

export function iptablesRestoreScript(services: readonly VirtualService[]): string {
  const out = ['*nat', ':PREROUTING ACCEPT [0:0]', ':CNMD-SERVICES - [0:0]'];
  const rules: string[] = ['-A PREROUTING -j CNMD-SERVICES'];
  for (const vs of services) {
    const chain = `CNMD-SVC-${vs.mark}`;
    out.push(`:${chain} - [0:0]`);
    for (const p of vs.ports)
      rules.push(`-A CNMD-SERVICES -d ${vs.vip}/32 -p ${p.proto} --dport ${p.port} -j ${chain}`);
    const live = vs.backends.filter((b) => b.weight > 0);
    const port = vs.ports[0]?.targetPort ?? vs.ports[0]?.port;
    live.forEach((b, i) => {
      const left = live.length - i;
      const pick = left > 1 ? `-m statistic --mode random --probability ${(1 / left).toFixed(5)} ` : '';
      rules.push(`-A ${chain} ${pick}-p tcp -j DNAT --to-destination ${b.address}:${port}`);
    });
  }
  return `${[...out, ...rules, 'COMMIT'].join('\n')}\n`;
}
