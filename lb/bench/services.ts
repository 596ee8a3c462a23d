// The services every half of lb's benchmark programs: 10,000 (CNMD_LB_BENCH_SERVICES) services
// of tcp/80 → 8080, rr, three backends each, frozen as the LoadBalancer sends them, and the one
// change measured: a task replaced (one backend of one service gets a new address).
import type { VirtualService } from '../src/types.js';

const v4 = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
const BACKENDS = (10 << 24) | (64 << 16); // 10.64.0.0/10: 3 × 10,000 backends and spares
const VIPS = (10 << 24) | (128 << 16);

export const service = (i: number, addresses: string[]): VirtualService =>
  Object.freeze({
    mark: 256 + i,
    vip: v4(VIPS + i),
    ports: Object.freeze([Object.freeze({ proto: 'tcp' as const, port: 80, targetPort: 8080 })]) as never,
    scheduler: 'rr' as const,
    backends: Object.freeze(addresses.map((address) => Object.freeze({ address, weight: 1 }))) as never,
  });

export const services = (n: number): VirtualService[] =>
  Array.from({ length: n }, (_, i) =>
    service(
      i,
      [0, 1, 2].map((j) => v4(BACKENDS + 3 * i + j)),
    ),
  );

/** The k-th change: service (k·7919 mod n) gets a new object with backend k mod 3 replaced. */
export function changeOne(desired: VirtualService[], k: number, n: number): VirtualService {
  const i = (k * 7919) % n;
  const addresses = desired[i]!.backends.map((b) => b.address);
  addresses[k % 3] = v4(BACKENDS + 3 * n + k);
  desired[i] = service(i, addresses);
  return desired[i];
}

/** Each full sync is the median of this many, each from an empty kernel state. */
export const SAMPLES = 3;

export const ms = (t0: number): number => Math.round((performance.now() - t0) * 100) / 100;

export const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
