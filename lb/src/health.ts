// Optional health checks per service (off unless a service asks): every interval each backend
// is probed (TCP connect, or HTTP GET with a status below 400); after `unhealthyThreshold`
// failures in a row it leaves the rotation (weight 0 in the data plane, established flows go
// on), after `healthyThreshold` successes in a row it is back. A backend starts healthy: the
// caller adds it once its container is up, as Docker's swarm does after its own health check.
import { request } from 'node:http';
import { connect } from 'node:net';
import type { Clock } from './clock.js';
import type { HealthCheck } from './service.js';

/** Resolves true when `address` answers the check in time. */
export type HealthProbe = (address: string, check: HealthCheck) => Promise<boolean>;

export const defaultProbe: HealthProbe = (address, check) =>
  new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), check.timeoutMs);
    if (check.type === 'tcp') {
      const s = connect({ host: address, port: check.port });
      s.once('connect', () => {
        s.destroy();
        finish(true);
      });
      s.once('error', () => finish(false));
      timer.unref?.();
      return;
    }
    const req = request({ host: address, port: check.port, path: check.path, method: 'GET' }, (res) => {
      res.resume();
      finish((res.statusCode ?? 500) < 400);
    });
    req.once('error', () => finish(false));
    req.setTimeout(check.timeoutMs, () => req.destroy());
    req.end();
  });

interface Watched {
  check: HealthCheck;
  addresses: () => string[];
  counts: Map<string, { ok: number; bad: number; healthy: boolean }>;
  timer: unknown;
  stopped: boolean;
}

export class HealthMonitor {
  readonly #clock: Clock;
  readonly #probe: HealthProbe;
  readonly #onChange: (service: string, address: string, healthy: boolean) => void;
  readonly #watched = new Map<string, Watched>();

  constructor(
    clock: Clock,
    probe: HealthProbe,
    onChange: (service: string, address: string, healthy: boolean) => void,
  ) {
    this.#clock = clock;
    this.#probe = probe;
    this.#onChange = onChange;
  }

  watch(service: string, check: HealthCheck, addresses: () => string[]): void {
    this.stop(service);
    const w: Watched = { check, addresses, counts: new Map(), timer: undefined, stopped: false };
    this.#watched.set(service, w);
    this.#schedule(service, w);
  }

  stop(service: string): void {
    const w = this.#watched.get(service);
    if (!w) return;
    w.stopped = true;
    this.#clock.clearTimeout(w.timer);
    this.#watched.delete(service);
  }

  close(): void {
    for (const s of [...this.#watched.keys()]) this.stop(s);
  }

  #schedule(service: string, w: Watched): void {
    w.timer = this.#clock.setTimeout(() => void this.#round(service, w), w.check.intervalMs);
  }

  async #round(service: string, w: Watched): Promise<void> {
    const addresses = w.addresses();
    for (const a of w.counts.keys()) if (!addresses.includes(a)) w.counts.delete(a);
    const results = await Promise.all(addresses.map((a) => this.#probe(a, w.check).catch(() => false)));
    if (w.stopped) return;
    addresses.forEach((a, i) => {
      let c = w.counts.get(a);
      if (!c) w.counts.set(a, (c = { ok: 0, bad: 0, healthy: true }));
      if (results[i]) [c.ok, c.bad] = [c.ok + 1, 0];
      else [c.ok, c.bad] = [0, c.bad + 1];
      if (c.healthy && c.bad >= w.check.unhealthyThreshold) {
        c.healthy = false;
        this.#onChange(service, a, false);
      } else if (!c.healthy && c.ok >= w.check.healthyThreshold) {
        c.healthy = true;
        this.#onChange(service, a, true);
      }
    });
    this.#schedule(service, w);
  }
}
