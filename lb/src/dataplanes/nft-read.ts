// Reading the table back: `nft -j list table inet cnmd_lb` (libnftables-json(5)) into the
// held state (grouped by service, so that a restarted data plane resyncs by difference) and
// into VirtualServices (DataPlane.read: what the kernel holds, not what was last sent).
import { canonical } from '../ip.js';
import type { Scheduler, VirtualService } from '../types.js';
import { emptyHeld, type Held, MAPS, SCHED_CODE } from './nft-script.js';

const SCHED_OF = Object.fromEntries(Object.entries(SCHED_CODE).map(([k, v]) => [v, k])) as Record<number, Scheduler>;
const CHAIN = /^(rr|wrr|lc|sh)_[apt]_\d+$/;

type Json = Record<string, unknown>;

const text = (v: unknown): string => {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return canonical(v) ?? v;
  const o = v as Json;
  if (o.concat) return (o.concat as unknown[]).map(text).join(' . ');
  if (o.jump) return `jump ${(o.jump as Json).target}`;
  throw new Error(`unexpected element ${JSON.stringify(v)}`);
};

export function parseListing(json: string): Held {
  const held = emptyHeld();
  const flat: [string, string, string][] = [];
  const svcMark = new Map<string, string>();
  for (const it of (JSON.parse(json) as { nftables: Json[] }).nftables) {
    const chain = it.chain as Json | undefined;
    if (chain && CHAIN.test(chain.name as string)) held.chains.add(chain.name as string);
    const map = it.map as Json | undefined;
    if (!map || !((map.name as string) in MAPS)) continue;
    for (const [k, v] of (map.elem as [unknown, unknown][] | undefined) ?? []) {
      const e: [string, string, string] = [map.name as string, text(k), text(v)];
      flat.push(e);
      if (e[0].startsWith('svc')) svcMark.set(`${e[0].slice(3)}|${e[1]}`, e[2]);
    }
  }
  for (const [map, key, v] of flat) {
    let mark: string | undefined;
    if (map.startsWith('svc') || map.startsWith('vips')) mark = v;
    else if (map.startsWith('tport')) mark = svcMark.get(`${map.slice(5)}|${key}`);
    else if (map === 'counts' || map === 'info') mark = key;
    else mark = key.split(' . ')[0];
    if (mark === undefined) continue; // a target port without its service: nothing uses it
    let s = held.services.get(Number(mark));
    if (!s) held.services.set(Number(mark), (s = { fp: '', els: [] }));
    s.els.push(map, key, v);
  }
  return held;
}

/** The services a table holds, read back from its maps. */
export function servicesOf(held: Held): VirtualService[] {
  const out: VirtualService[] = [];
  for (const [mark, st] of held.services) {
    const vs: VirtualService = { mark, vip: '', ports: [], scheduler: 'rr', backends: [] };
    const tports = new Map<string, number>();
    const slotList: [number, string][] = [];
    const weights = new Map<string, number>();
    const svcKeys: string[] = [];
    let slotPort: number | undefined;
    for (let i = 0; i < st.els.length; i += 3) {
      const [map, key, v] = [st.els[i]!, st.els[i + 1]!, st.els[i + 2]!];
      const parts = key.split(' . ');
      if (map.startsWith('tport')) tports.set(key, Number(v));
      else if (map.startsWith('vips')) vs.vip = key;
      else if (map.startsWith('svc')) svcKeys.push(key);
      else if (map === 'info') vs.scheduler = SCHED_OF[Number(v)] ?? 'rr';
      else if (map === 'counts') vs.scheduler = v.slice(5).split('_')[0] as Scheduler;
      else if (map.startsWith('slot')) {
        const [a, p] = v.split(' . ');
        slotList.push([Number(parts[1]), a!]);
        if (p !== undefined) slotPort = Number(p);
      } else if (map.startsWith('weights')) weights.set(parts[1]!, Number(v));
    }
    for (const key of svcKeys) {
      const [vip, proto, p] = key.split(' . ') as [string, 'tcp' | 'udp', string];
      vs.vip = vip;
      const port = Number(p);
      const t = tports.get(key) ?? slotPort;
      vs.ports.push(t === undefined || t === port ? { proto, port } : { proto, port, targetPort: t });
    }
    const each = vs.scheduler === 'rr' || vs.scheduler === 'lc';
    const implied = new Map<string, number>();
    for (const [, a] of slotList.sort((x, y) => x[0] - y[0])) implied.set(a, each ? 1 : (implied.get(a) ?? 0) + 1);
    for (const [a, w] of implied) vs.backends.push({ address: a, weight: weights.get(a) ?? w });
    for (const [a, w] of weights) if (!implied.has(a)) vs.backends.push({ address: a, weight: w });
    vs.ports.sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port);
    vs.backends.sort((a, b) => a.address.localeCompare(b.address));
    out.push(vs);
  }
  return out.sort((a, b) => a.mark - b.mark);
}
