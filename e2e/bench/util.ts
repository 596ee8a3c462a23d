// What the e2e benches share: percentiles, the load average printed beside a figure, waiting
// for a condition, and a bounded pool of concurrent work.
import { loadavg } from 'node:os';
import type { ClusterLab } from '../src/cluster-lab.js';

/** The p-th percentile of `xs` (nearest rank), to 0.1. */
export const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 10) / 10;
};

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** The 1, 5 and 15 minute load averages, as a figure's context. */
export const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

export const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

export async function until(what: string, ok: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Runs `fn` over `items`, `n` at a time. */
export async function pool<T>(items: T[], n: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

/** For a failed run's why: the last lines each daemon of the lab wrote. */
export function printHostLogs(lab: ClusterLab | undefined, lines = 20): void {
  for (const [i, h] of (lab?.hosts ?? []).entries()) {
    console.error(`host${i}'s log:\n${h.log.split('\n').slice(-lines).join('\n')}`);
  }
}
