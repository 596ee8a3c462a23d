// The desired state of one load-balancer sandbox (libnetwork: one `lb_<network>` sandbox per
// network and host) and its application through a data plane. Every change is validated
// first (a bad one changes nothing), applied as the whole desired state (the data plane sends
// only the difference), and committed only once applied; changes are serialised, so two calls
// never interleave their transactions.
//
// Removing a backend drains it, as libnetwork does not (moby/moby#36878, #38841): weight 0 at
// once (no new connections, established ones go on), removal after a grace period, then its
// stale UDP conntrack entries are deleted, so no client keeps talking to a task that is gone.
import { type Clock, systemClock } from './clock.js';
import type { Conntrack } from './conntrack.js';
import { healthChannel, type LbSyncEvent, syncChannel } from './diagnostics.js';
import { invalid, isLbError, LbError } from './errors.js';
import { defaultProbe, HealthMonitor, type HealthProbe } from './health.js';
import { canonical } from './ip.js';
import {
  type BackendSpec,
  MIN_MARK,
  portsClash,
  type Service,
  type ServiceSpec,
  toVirtualService,
  validateBackend,
  validateBackends,
  validateService,
} from './service.js';
import type { ApplyHint, ApplyResult, DataPlane, VirtualService } from './types.js';

export interface LoadBalancerOptions {
  dataplane: DataPlane;
  /** Deletes stale UDP flows of removed backends; none are deleted when absent. */
  conntrack?: Conntrack;
  clock?: Clock;
  /** How long a removed backend drains before it goes (ms); 10 s by default. */
  drainMs?: number;
  /** Probes backends for the services that ask for health checks; from this process by default. */
  probe?: HealthProbe;
  /** Told when a backend's health changes, once the data plane holds the change: the caller
   * keeps its DNS answers (`tasks.`, dnsrr) in step. */
  onHealth?: (service: string, address: string, healthy: boolean) => void;
  /** Told of a failure no caller awaits: a drain that ended, a health change the data plane
   * refused (`op` names which); the next change tries again. */
  onError?: (op: string, error: Error) => void;
}

export function defaultOptions(): Omit<
  Required<LoadBalancerOptions>,
  'dataplane' | 'conntrack' | 'onHealth' | 'onError'
> {
  return { clock: systemClock, drainMs: 10_000, probe: defaultProbe };
}

interface Entry {
  svc: Service;
  /** Backends being drained: their weight before, and the timer that removes them. */
  draining: Map<string, { weight: number; timer: unknown }>;
  /** Backends out of the rotation by health check. */
  unhealthy: Set<string>;
  /** What the data plane was sent for it, kept while the entry is unchanged (see desiredOf). */
  vs?: VirtualService;
}

export class LoadBalancer implements AsyncDisposable {
  readonly #dp: DataPlane;
  readonly #conntrack: Conntrack | undefined;
  readonly #clock: Clock;
  readonly #drainMs: number;
  readonly #health: HealthMonitor;
  readonly #onHealth: LoadBalancerOptions['onHealth'];
  readonly #onError: LoadBalancerOptions['onError'];
  #entries = new Map<string, Entry>();
  /**
   * What the data plane last took (in #entries' order) and where each VIP service sits in it,
   * the marks in use and the services by VIP: kept as services come and go, so that a change
   * to one of 10,000 services copies an array and replaces one element instead of passing over
   * every service (and adding one does not compare it with every other).
   */
  #desired: VirtualService[] | undefined;
  #at = new Map<string, number>();
  #marks = new Set<number>();
  #lowestFree = MIN_MARK;
  #byVip = new Map<string, Set<string>>();
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: LoadBalancerOptions) {
    const o = { ...defaultOptions(), ...options };
    if (!o.dataplane) throw invalid('a LoadBalancer needs a data plane');
    if (!Number.isInteger(o.drainMs) || o.drainMs < 0) throw invalid('drainMs must be an integer >= 0');
    this.#dp = o.dataplane;
    this.#conntrack = o.conntrack;
    this.#clock = o.clock;
    this.#drainMs = o.drainMs;
    this.#onHealth = o.onHealth;
    this.#onError = o.onError;
    this.#health = new HealthMonitor(o.clock, o.probe, (s, a, ok) => void this.#healthChanged(s, a, ok));
  }

  /** Applies the desired state as it is (after a restart: the data plane resyncs by difference). */
  sync(): Promise<ApplyResult> {
    return this.#serial('sync', async () => this.#apply('sync'));
  }

  addService(spec: ServiceSpec): Promise<Service> {
    return this.#serial('addService', async () => {
      const svc = validateService(spec);
      if (this.#entries.has(svc.name)) throw new LbError('LB_SERVICE_EXISTS', `service ${svc.name} exists`);
      for (const other of (svc.vip && this.#byVip.get(svc.vip)) || []) {
        const clash = portsClash(svc, this.#entries.get(other)!.svc);
        if (clash) throw new LbError('LB_PORT_IN_USE', `${clash} is taken by service ${other}`);
      }
      if (svc.endpointMode === 'vip') svc.mark = this.#mark(svc.mark);
      await this.#apply('addService', { name: svc.name, entry: { svc, draining: new Map(), unhealthy: new Set() } });
      // dnsrr services are watched too: nothing is balanced, but their DNS answers follow (onHealth).
      if (svc.health) {
        this.#health.watch(svc.name, svc.health, () => {
          const e = this.#entries.get(svc.name);
          return e ? e.svc.backends.filter((b) => !e.draining.has(b.address)).map((b) => b.address) : [];
        });
      }
      return structuredClone(svc);
    });
  }

  removeService(name: string): Promise<void> {
    return this.#serial('removeService', async () => {
      const e = this.#entry(name);
      await this.#apply('removeService', { name });
      this.#health.stop(name);
      for (const d of e.draining.values()) this.#clock.clearTimeout(d.timer);
      await this.#flushUdp(
        e.svc,
        e.svc.backends.map((b) => b.address),
      );
    });
  }

  /** Makes the backends exactly `backends`; those left out are drained, unless `drain` is false. */
  setBackends(name: string, backends: BackendSpec[], opts: { drain?: boolean } = {}): Promise<void> {
    return this.#serial('setBackends', async () => {
      const e = this.#entry(name);
      if (!Array.isArray(backends)) throw invalid('backends must be a list');
      const want = validateBackends(e.svc, backends);
      const keep = new Set(want.map((b) => b.address));
      const gone = e.svc.backends.filter((b) => !keep.has(b.address)).map((b) => b.address);
      const drain = opts.drain !== false && this.#drainMs > 0;
      const svc = { ...e.svc, backends: [...want] };
      if (drain) {
        for (const a of gone) svc.backends.push({ address: a, weight: 0 });
      }
      await this.#apply('setBackends', this.#with(e, svc));
      for (const b of want) this.#undrain(e, b.address);
      if (drain) for (const a of gone) this.#startDrain(e, a, this.#drainMs, this.#weightBefore(e, a));
      else {
        // A backend that comes back later starts healthy, as a new one does.
        for (const a of gone) e.unhealthy.delete(a);
        await this.#flushUdp(e.svc, gone);
      }
    });
  }

  /** Adds a backend (once its container is up: the caller knows), or cancels its drain. */
  addBackend(name: string, backend: BackendSpec): Promise<void> {
    return this.#serial('addBackend', async () => {
      const e = this.#entry(name);
      const b = validateBackend(e.svc, backend);
      const backends = e.svc.backends.filter((x) => x.address !== b.address);
      backends.push(b);
      await this.#apply('addBackend', this.#with(e, { ...e.svc, backends }));
      this.#undrain(e, b.address);
    });
  }

  /** Drains a backend (weight 0: no new connections), then removes it after `graceMs`
   * (the drainMs option by default; 0 removes it now) and deletes its UDP flows. Resolves once
   * the drain has begun (or the backend is gone, for 0); `idle()` waits for the removal. */
  removeBackend(name: string, address: string, opts: { graceMs?: number } = {}): Promise<void> {
    return this.#serial('removeBackend', async () => {
      const e = this.#entry(name);
      const grace = opts.graceMs ?? this.#drainMs;
      if (!Number.isInteger(grace) || grace < 0) throw invalid('graceMs must be an integer >= 0');
      const b = e.svc.backends.find((x) => x.address === address || x.address === canonicalOr(address));
      if (!b) throw new LbError('LB_BACKEND_NOT_FOUND', `service ${name} has no backend ${address}`);
      if (grace === 0) return this.#remove(e, b.address, 'removeBackend');
      if (e.draining.has(b.address)) return;
      const weight = b.weight;
      const backends = e.svc.backends.map((x) => (x === b ? { ...x, weight: 0 } : x));
      await this.#apply('removeBackend', this.#with(e, { ...e.svc, backends }));
      this.#startDrain(e, b.address, grace, weight);
    });
  }

  /** A copy of every service, draining backends with weight 0. */
  services(): Service[] {
    return [...this.#entries.values()].map((e) => structuredClone(e.svc));
  }

  service(name: string): Service | undefined {
    const e = this.#entries.get(name);
    return e && structuredClone(e.svc);
  }

  /** The backends of a service that its health check took out of the rotation. */
  unhealthy(name: string): string[] {
    return [...(this.#entries.get(name)?.unhealthy ?? [])];
  }

  /** What the data plane is sent: the VIP services, drained and unhealthy backends at weight 0. */
  desired(): VirtualService[] {
    return desiredOf(this.#entries)[0];
  }

  /** Resolves when every change asked for so far (drain expiries included) is done. */
  async idle(): Promise<void> {
    let q: Promise<unknown>;
    do {
      q = this.#queue;
      await q;
    } while (q !== this.#queue);
  }

  close(): Promise<void> {
    return this.#serial(
      'close',
      async () => {
        if (this.#closed) return;
        this.#closed = true;
        this.#health.close();
        for (const e of this.#entries.values()) for (const d of e.draining.values()) this.#clock.clearTimeout(d.timer);
        await this.#dp.close();
      },
      true,
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #entry(name: string): Entry {
    const e = this.#entries.get(name);
    if (!e) throw new LbError('LB_SERVICE_NOT_FOUND', `no service ${JSON.stringify(name)}`);
    return e;
  }

  #with(e: Entry, svc: Service): Change {
    return { name: svc.name, entry: { ...e, svc, vs: undefined } };
  }

  #mark(wanted: number | undefined): number {
    const used = this.#marks;
    if (wanted !== undefined) {
      if (used.has(wanted)) throw new LbError('LB_MARK_IN_USE', `mark ${wanted} is taken`);
      return wanted;
    }
    let m = this.#lowestFree;
    while (used.has(m)) m++;
    this.#lowestFree = m;
    if (m > 0xffffffff) throw new LbError('LB_MARK_IN_USE', 'no mark left');
    return m;
  }

  #weightBefore(e: Entry, address: string): number {
    return e.draining.get(address)?.weight ?? e.svc.backends.find((b) => b.address === address)?.weight ?? 1;
  }

  #startDrain(e: Entry, address: string, ms: number, weight: number): void {
    if (e.draining.has(address)) return;
    const timer = this.#clock.setTimeout(() => {
      void this.#serial('drain-expired', async () => {
        const cur = this.#entries.get(e.svc.name);
        if (!cur?.draining.has(address)) return; // re-added or the service went meanwhile
        await this.#remove(cur, address, 'drain-expired');
      }).catch((err) => this.#onError?.('drain-expired', err)); // the next change retries the drain
    }, ms);
    e.draining.set(address, { weight, timer });
  }

  #undrain(e: Entry, address: string): void {
    const d = this.#entries.get(e.svc.name)?.draining.get(address);
    if (!d) return;
    this.#clock.clearTimeout(d.timer);
    this.#entries.get(e.svc.name)!.draining.delete(address);
  }

  async #remove(e: Entry, address: string, op: string): Promise<void> {
    const backends = e.svc.backends.filter((x) => x.address !== address);
    await this.#apply(op, this.#with(e, { ...e.svc, backends }));
    this.#undrain(e, address);
    this.#entries.get(e.svc.name)?.unhealthy.delete(address);
    await this.#flushUdp(e.svc, [address]);
  }

  async #flushUdp(svc: Service, addresses: string[]): Promise<void> {
    if (!this.#conntrack || !svc.vip || addresses.length === 0) return;
    if (svc.ports.length > 0 && !svc.ports.some((p) => p.proto === 'udp')) return;
    for (const a of addresses) await this.#conntrack.deleteUdp(svc.vip, a);
  }

  async #healthChanged(service: string, address: string, healthy: boolean): Promise<void> {
    if (healthChannel.hasSubscribers) healthChannel.publish({ service, address, healthy });
    await this.#serial('health', async () => {
      const e = this.#entries.get(service);
      if (!e) return;
      if (healthy) e.unhealthy.delete(address);
      else e.unhealthy.add(address);
      e.vs = undefined;
      await this.#apply('health', { name: service, entry: e });
      this.#onHealth?.(service, address, healthy);
    }).catch((err) => this.#onError?.('health', err));
  }

  /**
   * Sends the desired state with `change` (one service added, replaced or, without an entry,
   * removed; none for a full sync) to the data plane, with an ApplyHint naming that service, and
   * commits the change once the data plane took it.
   */
  async #apply(op: string, change?: Change): Promise<ApplyResult> {
    const before = change && this.#entries.get(change.name);
    const after = change?.entry;
    const pos = change && this.#at.get(change.name);
    const vip = after?.svc.endpointMode === 'vip';
    let desired = this.#desired;
    let at: Map<string, number> | undefined;
    let added: number | undefined;
    if (desired && change && vip && (pos !== undefined || !before)) {
      desired = desired.slice(); // the data plane may keep the array it was given
      if (pos !== undefined) desired[pos] = vsOf(after!);
      else added = desired.push(vsOf(after!)) - 1; // a new name goes last in #entries too
    } else if (!desired || (change && (vip || before?.svc.endpointMode === 'vip'))) {
      // (a dnsrr service is not in the desired state: its changes leave it as it is)
      [desired, at] = desiredOf(this.#entries, change);
    }
    const hint = change && hintOf(before, after);
    const t0 = performance.now();
    let r: ApplyResult | undefined;
    let error: string | undefined;
    try {
      r = await this.#dp.apply(desired, hint);
    } catch (cause) {
      error = isLbError(cause) ? cause.code : 'LB_DATAPLANE';
      if (isLbError(cause)) throw cause;
      throw new LbError('LB_DATAPLANE', `the ${this.#dp.name} data plane failed: ${(cause as Error).message}`, {
        cause,
      });
    } finally {
      if (syncChannel.hasSubscribers) {
        const ev: LbSyncEvent = {
          op,
          dataplane: this.#dp.name,
          services: desired.length,
          backends: desired.reduce((n, vs) => n + vs.backends.length, 0),
          added: r?.added ?? 0,
          changed: r?.changed ?? 0,
          removed: r?.removed ?? 0,
          ms: performance.now() - t0,
          ...(error ? { error } : {}),
        };
        syncChannel.publish(ev);
      }
    }
    if (change) this.#commit(change.name, before, after);
    this.#desired = desired;
    if (at) this.#at = at;
    if (added !== undefined) this.#at.set(change!.name, added);
    return r;
  }

  #commit(name: string, before: Entry | undefined, after: Entry | undefined): void {
    if (after) this.#entries.set(name, after);
    else this.#entries.delete(name);
    if (before?.svc === after?.svc) return;
    if (before?.svc.mark !== undefined && before.svc.mark !== after?.svc.mark) {
      this.#marks.delete(before.svc.mark);
      this.#lowestFree = Math.min(this.#lowestFree, before.svc.mark);
    }
    if (after?.svc.mark !== undefined) this.#marks.add(after.svc.mark);
    if (before?.svc.vip && before.svc.vip !== after?.svc.vip) this.#byVip.get(before.svc.vip)?.delete(name);
    if (after?.svc.vip) {
      let names = this.#byVip.get(after.svc.vip);
      if (!names) this.#byVip.set(after.svc.vip, (names = new Set()));
      names.add(name);
    }
  }

  #serial<T>(_op: string, fn: () => Promise<T>, whenClosed = false): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#closed && !whenClosed) throw new LbError('LB_CLOSED', 'the load balancer is closed');
      return fn();
    });
    this.#queue = run.catch(() => {});
    return run;
  }
}

/** One service added, replaced (`entry`) or removed (none). */
interface Change {
  name: string;
  entry?: Entry;
}

/** The same frozen object for an unchanged entry (a data plane takes it as unchanged at a glance). */
const vsOf = (e: Entry): VirtualService => (e.vs ??= toVirtualService(e.svc, e.unhealthy));

/** The desired state of `entries` with `change` made, and where each VIP service sits in it. */
function desiredOf(entries: Map<string, Entry>, change?: Change): [VirtualService[], Map<string, number>] {
  const out: VirtualService[] = [];
  const at = new Map<string, number>();
  const add = (name: string, e: Entry | undefined) => {
    if (e?.svc.endpointMode !== 'vip') return;
    at.set(name, out.length);
    out.push(vsOf(e));
  };
  for (const [name, e] of entries) add(name, name === change?.name ? change.entry : e);
  if (change && !entries.has(change.name)) add(change.name, change.entry);
  return [out, at];
}

/** What one service's change is to the data plane: its VirtualService again, or its mark gone. */
function hintOf(before: Entry | undefined, after: Entry | undefined): ApplyHint {
  const was = before?.svc.endpointMode === 'vip' ? before.svc.mark : undefined;
  const now = after?.svc.endpointMode === 'vip' ? after.vs : undefined;
  return {
    changed: now ? [now] : [],
    removed: was !== undefined && was !== now?.mark ? [was] : [],
  };
}

const canonicalOr = (a: string): string => canonical(a) ?? a;
