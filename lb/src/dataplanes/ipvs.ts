// The IPVS data plane: one firewall-mark virtual service per VirtualService.mark, NAT
// (masquerade) destinations with weights, programmed over one generic netlink socket opened in
// the LB sandbox. apply() sends only the difference from what the kernel holds (a mirror, read
// from the kernel first and again after any failure); it never flushes, since IPVS keeps a
// deleted destination for as long as its connections live (DESIGN.md, "Load balancing").
import type { Family } from '@cnmd/netutil';
import { LbError } from '../errors.js';
import { canonical, familyOf, parseAddr } from '../ip.js';
import type { GenlRequest, IpvsService } from '../ipvs/codec.js';
import { GenlSocket } from '../ipvs/genl-socket.js';
import { Ipvs } from '../ipvs/ipvs.js';
import type { ApplyHint, ApplyResult, DataPlane, Scheduler, ServicePort, VirtualService } from '../types.js';

export interface IpvsDataPlaneOptions {
  /**
   * Runs the socket's (synchronous) creation where the service lives, e.g. the sidecar's
   * `(open) => withNetns(lbSandbox, open)`. Default: in this process's namespace.
   */
  inNamespace?: <T>(open: () => T) => T;
}

interface Held {
  family: Family;
  scheduler: string;
  /** address → destination port and weight */
  dests: Map<string, { port: number; weight: number }>;
}

/**
 * A service as the caller gave it when it was last applied, compared field by field with the
 * next desired state: an unchanged service is recognised without parsing or allocating, so that
 * a full apply() of 10,000 services costs little more than its changes. It also keeps what IPVS
 * does not hold (the VIP and ports live in the mangle rules) for read(). It skips a service only
 * while the kernel is known to hold what it describes: a read that finds otherwise makes it stale.
 */
interface Snapshot {
  vip: string;
  vipText: string;
  scheduler: string;
  ports: ServicePort[];
  addresses: string[];
  weights: number[];
  /** The apply() that last met it (duplicate marks, removed services). */
  stamp: number;
  /** A read found the kernel holding something else: kept for read() only, never to skip. */
  stale?: true;
}

const SCHEDULERS: readonly string[] = ['rr', 'wrr', 'lc', 'sh'] satisfies Scheduler[];

export class IpvsDataPlane implements DataPlane {
  readonly name = 'ipvs' as const;
  readonly #ipvs: Ipvs;
  /** What the kernel holds, by mark; undefined until read. */
  #held: Map<number, Held> | undefined;
  /** A request failed: #held may not be what the kernel holds; read it before the next apply. */
  #dirty = false;
  /** #held is exactly what the last apply() was given, so an ApplyHint may be trusted. */
  #trusted = false;
  #snaps = new Map<number, Snapshot>();
  #stamp = 0;
  #closed = false;

  private constructor(ipvs: Ipvs) {
    this.#ipvs = ipvs;
  }

  /** Opens the socket and resolves the IPVS family: LB_IPVS_UNAVAILABLE where the kernel has none. */
  static async create(opts: IpvsDataPlaneOptions = {}): Promise<IpvsDataPlane> {
    const open = () => GenlSocket.open();
    return new IpvsDataPlane(await Ipvs.open(opts.inNamespace ? opts.inNamespace(open) : open()));
  }

  async apply(desired: readonly VirtualService[], hint?: ApplyHint): Promise<ApplyResult> {
    this.#check();
    const held = this.#held && !this.#dirty ? this.#held : await this.#readKernel();
    const stamp = ++this.#stamp;
    const plan =
      (hint && this.#trusted && this.#hinted(held, desired, hint, stamp)) || this.#full(held, desired, stamp);
    const result = await this.#send(held, plan);
    for (const mark of plan.gone) {
      held.delete(mark);
      this.#snaps.delete(mark);
    }
    for (const [mark, [w, snap]] of plan.fresh) {
      held.set(mark, w);
      this.#snaps.set(mark, snap);
    }
    if (!plan.hinted) for (const [mark, snap] of this.#snaps) if (snap.stamp !== stamp) this.#snaps.delete(mark);
    this.#trusted = true;
    return result;
  }

  /** Validates every service and keeps those that are not what was last applied (O(services)). */
  #full(held: Map<number, Held>, desired: readonly VirtualService[], stamp: number): Plan {
    const fresh = new Map<number, [Held, Snapshot]>();
    for (const s of desired) {
      const snap = this.#snaps.get(s.mark);
      if (fresh.has(s.mark) || snap?.stamp === stamp) throw invalid(s, 'two services have this mark');
      if (snap && !snap.stale && held.has(s.mark) && same(snap, s)) {
        snap.stamp = stamp;
        continue;
      }
      fresh.set(s.mark, toHeld(s, stamp));
    }
    const gone: number[] = [];
    for (const mark of held.keys()) if (!fresh.has(mark) && this.#snaps.get(mark)?.stamp !== stamp) gone.push(mark);
    return { fresh, gone, hinted: false };
  }

  /**
   * Only what the hint names (O(change)); undefined when the hint does not add up to `desired`
   * (its size), and the whole state is compared instead.
   */
  #hinted(
    held: Map<number, Held>,
    desired: readonly VirtualService[],
    hint: ApplyHint,
    stamp: number,
  ): Plan | undefined {
    const fresh = new Map<number, [Held, Snapshot]>();
    for (const s of hint.changed) {
      if (fresh.has(s.mark)) throw invalid(s, 'two services have this mark');
      const snap = this.#snaps.get(s.mark);
      if (snap && !snap.stale && held.has(s.mark) && same(snap, s)) continue;
      fresh.set(s.mark, toHeld(s, stamp));
    }
    let size = held.size;
    for (const s of hint.changed) if (!held.has(s.mark)) size++;
    const gone: number[] = [];
    for (const mark of hint.removed) {
      if (!held.has(mark) || hint.changed.some((s) => s.mark === mark)) continue;
      gone.push(mark);
      size--;
    }
    return size === desired.length ? { fresh, gone, hinted: true } : undefined;
  }

  /** Sends the plan, in order on one socket (a service before its destinations). */
  async #send(held: Map<number, Held>, plan: Plan): Promise<ApplyResult> {
    const reqs: GenlRequest[] = [];
    const result: ApplyResult = { added: 0, changed: 0, removed: 0 };
    const q = this.#ipvs.requests;
    for (const mark of plan.gone) {
      const h = held.get(mark)!;
      reqs.push(q.delService({ family: h.family, fwmark: mark })); // its destinations go with it
      result.removed += 1 + h.dests.size;
    }
    for (const [mark, [w]] of plan.fresh) {
      let h = held.get(mark);
      const key = { family: w.family, fwmark: mark };
      if (h && h.family !== w.family) {
        reqs.push(q.delService({ family: h.family, fwmark: mark }));
        result.removed += 1 + h.dests.size;
        h = undefined;
      }
      if (!h) {
        reqs.push(q.newService(service(mark, w)));
        result.added++;
        h = { family: w.family, scheduler: w.scheduler, dests: new Map() };
      } else if (h.scheduler !== w.scheduler) {
        reqs.push(q.setService(service(mark, w)));
        result.changed++;
      }
      for (const [address, d] of h.dests) {
        const n = w.dests.get(address);
        if (n && n.port === d.port) continue;
        reqs.push(q.delDest(key, { address, port: d.port, weight: d.weight }));
        result.removed++;
      }
      for (const [address, d] of w.dests) {
        const o = h.dests.get(address);
        if (o && o.port === d.port) {
          if (o.weight === d.weight) continue;
          reqs.push(q.setDest(key, { address, ...d })); // weight 0 drains: no new connections
          result.changed++;
        } else {
          reqs.push(q.newDest(key, { address, ...d }));
          result.added++;
        }
      }
    }
    if (reqs.length === 0) return result;
    const failed = await this.#ipvs.sendAll(reqs).catch((e: Error) => e);
    if (failed) {
      // part of it may have applied: believe none of it, read the kernel before the next apply
      this.#dirty = true;
      this.#trusted = false;
      throw failed;
    }
    return result;
  }

  async read(): Promise<VirtualService[]> {
    this.#check();
    const held = await this.#readKernel();
    // in a stable order: by mark, backends by address (the kernel lists them by hash and newest first)
    return [...held]
      .sort(([a], [b]) => a - b)
      .map(([mark, h]) => ({
        mark,
        vip: this.#snaps.get(mark)?.vip ?? '',
        ports: this.#snaps.get(mark)?.ports.map((p) => ({ ...p })) ?? [],
        scheduler: h.scheduler as Scheduler,
        backends: [...h.dests]
          .sort(([a], [b]) => byAddress(a, b))
          .map(([address, d]) => ({ address, weight: d.weight })),
      }));
  }

  async reset(): Promise<void> {
    await this.apply([]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ipvs.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Every fwmark service and its destinations, as the kernel reports them; refreshes the mirror.
   * A service the kernel holds otherwise than the mirror said loses its snapshot (it is compared
   * in full at the next apply), and no hint is trusted until an apply has put it right.
   */
  async #readKernel(): Promise<Map<number, Held>> {
    const services = await this.#ipvs.services();
    const dests = await Promise.all(services.map((s) => this.#ipvs.dests(s)));
    const held = new Map<number, Held>();
    services.forEach((s, i) => {
      held.set(s.fwmark, {
        family: s.family,
        scheduler: s.scheduler,
        dests: new Map(dests[i]!.map((d) => [d.address, { port: d.port, weight: d.weight }])),
      });
    });
    const before = this.#held;
    let drift = !before || this.#dirty || before.size !== held.size;
    for (const [mark, h] of held) {
      const was = before?.get(mark);
      if (was && sameHeld(was, h)) continue;
      drift = true;
      const snap = this.#snaps.get(mark);
      if (snap) snap.stale = true;
    }
    if (drift) this.#trusted = false;
    this.#held = held;
    this.#dirty = false;
    return held;
  }

  #check(): void {
    if (this.#closed) throw new LbError('LB_CLOSED', 'the IPVS data plane is closed');
  }
}

function byAddress(a: string, b: string): number {
  const x = parseAddr(a)!.value;
  const y = parseAddr(b)!.value;
  return x < y ? -1 : x > y ? 1 : 0;
}

const service = (fwmark: number, h: Held): IpvsService => ({ family: h.family, fwmark, scheduler: h.scheduler });

/**
 * canonical() and its family, remembered: apply() validates the whole desired state each time,
 * and 30,000 addresses parsed anew would cost more than the one change it sends.
 */
const seen = new Map<string, { address: string; family: Family } | null>();
function address(s: string): { address: string; family: Family } | null {
  let a = seen.get(s);
  if (a === undefined) {
    const c = canonical(s);
    a = c ? { address: c, family: familyOf(c)! } : null;
    if (seen.size >= 200_000) seen.clear();
    seen.set(s, a);
  }
  return a;
}

const invalid = (s: VirtualService, why: string) =>
  new LbError('LB_INVALID_ARGUMENT', `service mark ${s.mark}: ${why}`);

/** What apply() sends: services that go entirely, and those to bring to a new entry. */
interface Plan {
  fresh: Map<number, [Held, Snapshot]>;
  gone: number[];
  hinted: boolean;
}

function sameHeld(a: Held, b: Held): boolean {
  if (a.family !== b.family || a.scheduler !== b.scheduler || a.dests.size !== b.dests.size) return false;
  for (const [address, d] of a.dests) {
    const e = b.dests.get(address);
    if (!e || e.port !== d.port || e.weight !== d.weight) return false;
  }
  return true;
}

/** Validates one service and makes its entry and snapshot (the slow path: it changed). */
function toHeld(s: VirtualService, stamp: number): [Held, Snapshot] {
  if (!Number.isInteger(s.mark) || s.mark < 1 || s.mark > 0xffffffff) throw invalid(s, 'the mark is not a u32 above 0');
  if (!SCHEDULERS.includes(s.scheduler))
    throw new LbError('LB_INVALID_SCHEDULER', `service mark ${s.mark}: ${s.scheduler}`);
  const vip = address(s.vip);
  if (!vip) throw invalid(s, `the VIP ${s.vip} is not an address`);
  const port = destPort(s.ports);
  if (port === undefined) throw invalid(s, 'an IPVS fwmark service maps at most one port to another');
  const dests = new Map<string, { port: number; weight: number }>();
  for (const b of s.backends) {
    const a = address(b.address);
    if (!a || a.family !== vip.family) throw invalid(s, `backend ${b.address} is not an address of the VIP's family`);
    if (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > 0x7fffffff)
      throw invalid(s, `backend ${b.address}: weight ${b.weight}`);
    if (dests.has(a.address)) throw invalid(s, `backend ${b.address} is listed twice`);
    dests.set(a.address, { port, weight: b.weight });
  }
  const snap: Snapshot = {
    vip: vip.address,
    vipText: s.vip,
    scheduler: s.scheduler,
    ports: s.ports.map((p) => ({ ...p })),
    addresses: s.backends.map((b) => b.address),
    weights: s.backends.map((b) => b.weight),
    stamp,
  };
  return [{ family: vip.family, scheduler: s.scheduler, dests }, snap];
}

/** `s` is, field by field, what was applied as `snap` (so it is valid, and nothing to send). */
function same(snap: Snapshot, s: VirtualService): boolean {
  const bs = s.backends;
  if (s.vip !== snap.vipText || s.scheduler !== snap.scheduler || bs.length !== snap.addresses.length) return false;
  for (let i = 0; i < bs.length; i++) {
    if (bs[i]!.address !== snap.addresses[i] || bs[i]!.weight !== snap.weights[i]) return false;
  }
  const ps = s.ports;
  if (ps.length !== snap.ports.length) return false;
  for (let i = 0; i < ps.length; i++) {
    const p = ps[i]!;
    const q = snap.ports[i]!;
    if (p.proto !== q.proto || p.port !== q.port || p.targetPort !== q.targetPort) return false;
  }
  return true;
}

/**
 * The destinations' port: 0 keeps each packet's own port, so one fwmark service covers every
 * port the mangle rules mark (as libnetwork does); a single port with another targetPort is
 * rewritten to it; several such ports cannot be (undefined).
 */
function destPort(ports: readonly ServicePort[]): number | undefined {
  let mapped: number | undefined;
  for (const p of ports) if (p.targetPort !== undefined && p.targetPort !== p.port) mapped = p.targetPort;
  if (mapped === undefined) return 0;
  return ports.length === 1 ? mapped : undefined;
}
