// Which hosts are alive, judged by when this host last heard from each (its own monotonic clock,
// so no two hosts' clocks are compared): a host whose heartbeats stop for the grace period, or
// whose heartbeat key goes, is gone until one arrives again. Nothing is judged while this host
// is itself cut off from NATS: it would take every other host for gone.
import type { ClusterStatus } from './types.js';

export class Liveness {
  readonly #self: string;
  readonly #graceMs: number;
  readonly #changed: (host: string, alive: boolean) => void;
  readonly #seen = new Map<string, number>();
  readonly #dead = new Set<string>();

  constructor(self: string, graceMs: number, changed: (host: string, alive: boolean) => void) {
    this.#self = self;
    this.#graceMs = graceMs;
    this.#changed = changed;
  }

  alive(host: string): boolean {
    return !this.#dead.has(host);
  }

  /** How long ago it was last heard from, ms; undefined if never. */
  since(host: string, now = performance.now()): number | undefined {
    const at = this.#seen.get(host);
    return at === undefined ? undefined : Math.round(now - at);
  }

  /** A host this host has not heard from yet gets a grace period from now. */
  known(host: string): void {
    if (host !== this.#self && !this.#seen.has(host)) this.#seen.set(host, performance.now());
  }

  /** Its heartbeat arrived (beat), or its key went (it left). */
  heard(host: string, beat: boolean): void {
    if (host === this.#self) return;
    if (beat) this.#seen.set(host, performance.now());
    this.#judge(host, beat);
  }

  /** Judges every host by the grace period; call while connected. */
  check(now = performance.now()): void {
    for (const [host, at] of this.#seen) if (now - at > this.#graceMs) this.#judge(host, false);
  }

  /** After an outage, every host starts a grace period again (we were the deaf one). */
  forgive(now = performance.now()): void {
    for (const host of this.#seen.keys()) if (!this.#dead.has(host)) this.#seen.set(host, now);
  }

  /** The hosts that beat, each with how long ago it last did and whether it is alive. */
  describe(hosts: { host: string; addr?: string }[]): ClusterStatus['hosts'] {
    return hosts.map(({ host, addr }) => {
      const since = this.since(host);
      return {
        host,
        ...(addr ? { addr } : {}),
        ...(since !== undefined ? { lastHeartbeatMs: since } : {}),
        alive: this.alive(host),
      };
    });
  }

  #judge(host: string, alive: boolean): void {
    if (alive === !this.#dead.has(host)) return;
    if (alive) this.#dead.delete(host);
    else this.#dead.add(host);
    this.#changed(host, alive);
  }
}
