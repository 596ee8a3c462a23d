// The IPVS data plane: one firewall-mark virtual service per VirtualService.mark, NAT
// (masquerade) destinations with weights, programmed over one generic netlink socket opened in
// the LB sandbox. apply() sends only the difference from what the kernel holds (a mirror, read
// from the kernel first and again after any failure); it never flushes, since IPVS keeps a
// deleted destination for as long as its connections live (DESIGN.md, "Load balancing").
import { LbError } from '../errors.js';
import { canonical, type Family, familyOf, parseAddr } from '../ip.js';
import type { IpvsService } from '../ipvs/codec.js';
import { GenlSocket } from '../ipvs/genl-socket.js';
import { Ipvs } from '../ipvs/ipvs.js';
import type { ApplyResult, DataPlane, Scheduler, ServicePort, VirtualService } from '../types.js';

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
  /** address → destination port and weight (`seen`: unchanged()'s scratch mark) */
  dests: Map<string, { port: number; weight: number; seen?: number }>;
}

const SCHEDULERS: readonly string[] = ['rr', 'wrr', 'lc', 'sh'] satisfies Scheduler[];

export class IpvsDataPlane implements DataPlane {
  readonly name = 'ipvs' as const;
  readonly #ipvs: Ipvs;
  /** What the kernel holds, by mark; undefined until read (and after a failed apply). */
  #held: Map<number, Held> | undefined;
  /** What IPVS does not hold (the VIP and ports live in the mangle rules), from the last apply. */
  #meta = new Map<number, { vip: string; ports: ServicePort[] }>();
  #closed = false;

  private constructor(ipvs: Ipvs) {
    this.#ipvs = ipvs;
  }

  /** Opens the socket and resolves the IPVS family: LB_IPVS_UNAVAILABLE where the kernel has none. */
  static async create(opts: IpvsDataPlaneOptions = {}): Promise<IpvsDataPlane> {
    const open = () => GenlSocket.open();
    return new IpvsDataPlane(await Ipvs.open(opts.inNamespace ? opts.inNamespace(open) : open()));
  }

  async apply(desired: readonly VirtualService[]): Promise<ApplyResult> {
    this.#check();
    const held = this.#held ?? (await this.#readKernel());
    const want = toHeld(desired, held); // throws before anything is sent
    const ops: Promise<unknown>[] = [];
    const result: ApplyResult = { added: 0, changed: 0, removed: 0 };
    const ipvs = this.#ipvs;
    for (const [mark, h] of held) {
      const w = want.get(mark);
      if (w && w.family === h.family) continue;
      ops.push(ipvs.delService({ family: h.family, fwmark: mark })); // its destinations go with it
      result.removed += 1 + h.dests.size;
    }
    for (const [mark, w] of want) {
      let h = held.get(mark);
      if (h === w) continue; // unchanged: toHeld kept the held entry
      const key = { family: w.family, fwmark: mark };
      if (h && h.family !== w.family) h = undefined;
      if (!h) {
        // in order on one socket: the kernel has the service before its destinations
        ops.push(ipvs.newService(service(mark, w)));
        result.added++;
        h = { family: w.family, scheduler: w.scheduler, dests: new Map() };
      } else if (h.scheduler !== w.scheduler) {
        ops.push(ipvs.setService(service(mark, w)));
        result.changed++;
      }
      for (const [address, d] of h.dests) {
        const n = w.dests.get(address);
        if (n && n.port === d.port) continue;
        ops.push(ipvs.delDest(key, { address, port: d.port, weight: d.weight }));
        result.removed++;
      }
      for (const [address, d] of w.dests) {
        const o = h.dests.get(address);
        if (o && o.port === d.port) {
          if (o.weight === d.weight) continue;
          ops.push(ipvs.setDest(key, { address, ...d })); // weight 0 drains: no new connections
          result.changed++;
        } else {
          ops.push(ipvs.newDest(key, { address, ...d }));
          result.added++;
        }
      }
    }
    const failed = (await Promise.allSettled(ops)).find((r) => r.status === 'rejected');
    if (failed) {
      this.#held = undefined; // part of it applied: read the kernel again next time
      throw failed.reason;
    }
    this.#held = want;
    const meta = new Map<number, { vip: string; ports: ServicePort[] }>();
    for (const s of desired) {
      const m = this.#meta.get(s.mark);
      const vip = address(s.vip)!.address;
      meta.set(
        s.mark,
        m && m.vip === vip && samePorts(m.ports, s.ports) ? m : { vip, ports: s.ports.map((p) => ({ ...p })) },
      );
    }
    this.#meta = meta;
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
        vip: this.#meta.get(mark)?.vip ?? '',
        ports: this.#meta.get(mark)?.ports.map((p) => ({ ...p })) ?? [], // copies: meta holds the caller's
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

  /** Every fwmark service and its destinations, as the kernel reports them; refreshes the mirror. */
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
    this.#held = held;
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

/** Validates the desired state up front (nothing is sent if any of it is wrong). */
function toHeld(desired: readonly VirtualService[], held: Map<number, Held>): Map<number, Held> {
  const out = new Map<number, Held>();
  for (const s of desired) {
    const bad = (why: string) => new LbError('LB_INVALID_ARGUMENT', `service mark ${s.mark}: ${why}`);
    if (!Number.isInteger(s.mark) || s.mark < 1 || s.mark > 0xffffffff) throw bad('the mark is not a u32 above 0');
    if (out.has(s.mark)) throw bad('two services have this mark');
    if (!SCHEDULERS.includes(s.scheduler))
      throw new LbError('LB_INVALID_SCHEDULER', `service mark ${s.mark}: ${s.scheduler}`);
    const family = address(s.vip)?.family;
    if (!family) throw bad(`the VIP ${s.vip} is not an address`);
    const port = destPort(s.ports);
    if (port === undefined) throw bad('an IPVS fwmark service maps at most one port to another');
    // most services are as the kernel holds them: keep that entry, allocate nothing
    const h = held.get(s.mark);
    if (h && unchanged(s, h, family, port)) {
      out.set(s.mark, h);
      continue;
    }
    const dests = new Map<string, { port: number; weight: number }>();
    for (const b of s.backends) {
      const a = address(b.address);
      if (!a || a.family !== family) throw bad(`backend ${b.address} is not an address of the VIP's family`);
      if (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > 0x7fffffff)
        throw bad(`backend ${b.address}: weight ${b.weight}`);
      if (dests.has(a.address)) throw bad(`backend ${b.address} is listed twice`);
      dests.set(a.address, { port, weight: b.weight });
    }
    out.set(s.mark, { family, scheduler: s.scheduler, dests });
  }
  return out;
}

/** The service (already checked but for its backends) is exactly what `h` holds. */
function unchanged(s: VirtualService, h: Held, family: Family, port: number): boolean {
  if (h.family !== family || h.scheduler !== s.scheduler || h.dests.size !== s.backends.length) return false;
  const stamp = ++stamps; // marks the held destinations met, so that a duplicate shows
  for (const b of s.backends) {
    const d = h.dests.get(address(b.address)?.address ?? '');
    if (!d || d.seen === stamp || d.port !== port || d.weight !== b.weight) return false; // held weights are valid
    d.seen = stamp;
  }
  return true; // sizes equal, every backend found once: the same set
}
let stamps = 0;

const samePorts = (a: readonly ServicePort[], b: readonly ServicePort[]): boolean =>
  a.length === b.length &&
  a.every((p, i) => p.proto === b[i]!.proto && p.port === b[i]!.port && p.targetPort === b[i]!.targetPort);

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
