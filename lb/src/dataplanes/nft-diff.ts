// The difference between what the table holds and what is wanted, as one nft transaction.
import type { VirtualService } from '../types.js';
import { chainRules, emptyHeld, fingerprint, type Held, type ServiceState, serviceElements, T } from './nft-script.js';

export interface Diff {
  lines: string[];
  /** Elements added, changed (deleted and added again with another value) and removed. */
  added: number;
  changed: number;
  removed: number;
  /** How many services the table holds once applied, when `desired` holds every service that
   * is new or changed and `removed` every one that goes. */
  size: number;
  /** Brings `held` (the state diffed from) to what the table holds once the lines are applied,
   * in place: copying the state of 10,000 services would cost more than the change itself. */
  commit(held: Held): void;
  /** A copy of `held` brought forward (commit on a copy). */
  readonly next: Held;
}

/** Elements to send, grouped by map: `key` for a delete, `key : value` for an add. */
class Batch {
  readonly maps = new Map<string, string[]>();
  count = 0;

  push(map: string, text: string): void {
    let list = this.maps.get(map);
    if (!list) this.maps.set(map, (list = []));
    list.push(text);
    this.count++;
  }

  lines(verb: 'add' | 'delete'): string[] {
    const out: string[] = [];
    for (const [map, list] of this.maps) {
      for (let i = 0; i < list.length; i += CHUNK) {
        out.push(`${verb} element ${T} ${map} { ${list.slice(i, i + CHUNK).join(', ')} }`);
      }
    }
    return out;
  }
}

const CHUNK = 2000;

/** The transaction from `held` to `desired`: new chains first (elements jump to them), then the
 * elements that go or change value (a map element is replaced by delete and add: nft refuses to
 * add a key it has), then the new ones. An unchanged service costs an identity check (frozen) or
 * a fingerprint. Chains no longer used stay: they cost nothing and a later service reuses them. */
export function diff(
  held: Held,
  desired: readonly VirtualService[],
  opts: { keepAbsent?: boolean; removed?: readonly number[] } = {},
): Diff {
  const sets: [number, ServiceState][] = [];
  const gone: number[] = [];
  const newChains: string[] = [];
  const del = new Batch();
  const add = new Batch();
  let changed = 0;
  let kept = 0;
  for (const vs of desired) {
    const old = held.services.get(vs.mark);
    if (old) kept++;
    if (old?.src === vs) continue;
    const src = isDeepFrozen(vs) ? vs : undefined;
    const fp = fingerprint(vs);
    if (old && old.fp === fp) {
      sets.push([vs.mark, { ...old, src }]);
      continue;
    }
    const want = serviceElements(vs, fp);
    sets.push([vs.mark, { fp: want.fp, els: want.els, src }]);
    if (want.chain && !held.chains.has(want.chain) && !newChains.includes(want.chain)) newChains.push(want.chain);
    if (!old) {
      for (let i = 0; i < want.els.length; i += 3) add.push(want.els[i]!, `${want.els[i + 1]} : ${want.els[i + 2]}`);
      continue;
    }
    const before = index(old);
    const after = index(want);
    for (const [k, [map, key, v]] of before) {
      const w = after.get(k);
      if (w?.[2] === v) continue;
      del.push(map, key);
      if (w) changed++;
    }
    for (const [k, [map, key, v]] of after) if (before.get(k)?.[2] !== v) add.push(map, `${key} : ${v}`);
  }
  if (opts.removed) {
    // `desired` is only what changed (an ApplyHint): what goes is named, not searched for
    for (const mark of opts.removed) {
      const old = held.services.get(mark);
      if (!old || desired.some((vs) => vs.mark === mark)) continue;
      gone.push(mark);
      for (let i = 0; i < old.els.length; i += 3) del.push(old.els[i]!, old.els[i + 1]!);
    }
  } else if (!opts.keepAbsent && kept < held.services.size) {
    const marks = new Set(desired.map((vs) => vs.mark));
    for (const [mark, old] of held.services) {
      if (marks.has(mark)) continue;
      gone.push(mark);
      for (let i = 0; i < old.els.length; i += 3) del.push(old.els[i]!, old.els[i + 1]!);
    }
  }
  const lines = [...newChains.flatMap(chainRules), ...del.lines('delete'), ...add.lines('add')];
  const commit = (h: Held) => {
    for (const [mark, st] of sets) h.services.set(mark, st);
    for (const mark of gone) h.services.delete(mark);
    for (const c of newChains) h.chains.add(c);
  };
  return {
    lines,
    size: held.services.size + desired.length - kept - gone.length,
    added: add.count - changed,
    changed,
    removed: del.count - changed,
    commit,
    get next() {
      const h: Held = { services: new Map(held.services), chains: new Set(held.chains) };
      commit(h);
      return h;
    },
  };
}

/** What the table holds when it holds exactly `desired`. */
export const desiredState = (desired: readonly VirtualService[]): Held => diff(emptyHeld(), desired).next;

function index(s: ServiceState): Map<string, [string, string, string]> {
  const m = new Map<string, [string, string, string]>();
  for (let i = 0; i < s.els.length; i += 3)
    m.set(`${s.els[i]}|${s.els[i + 1]}`, [s.els[i]!, s.els[i + 1]!, s.els[i + 2]!]);
  return m;
}

const isDeepFrozen = (vs: VirtualService): boolean =>
  Object.isFrozen(vs) &&
  Object.isFrozen(vs.ports) &&
  Object.isFrozen(vs.backends) &&
  vs.ports.every(Object.isFrozen) &&
  vs.backends.every(Object.isFrozen);
