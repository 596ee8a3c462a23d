// npm run bench -w @cnmd/lb: programs 10,000 services x 3 backends with the nftables data plane
// in a network namespace of its own (full sync), then changes one backend at a time 100 times,
// and loads the same services as kube-proxy-style iptables DNAT rules with one full
// iptables-restore, for comparison. Prints one JSON line. Targets (lb/README.md): full sync
// <= 1 s, one change <= 5 ms p50. Everything it made is removed at the end, even on failure.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { NftablesDataPlane } from '../src/dataplanes/nftables.js';
import { execIn } from '../src/exec.js';
import type { VirtualService } from '../src/types.js';
import { iptablesRestoreScript } from './iptables.js';

const exec = promisify(execFile);
const SERVICES = Number(process.env.CNMD_LB_BENCH_SERVICES ?? 10_000);
const CHANGES = 100;

const v4 = (base: number, i: number): string => {
  const n = base + i;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
};
const BACKENDS = (10 << 24) | (64 << 16); // 10.64.0.0/10 holds 3 x 10,000 backends and spares
const VIPS = (10 << 24) | (128 << 16);

// Frozen, as LoadBalancer sends them: an unchanged service is the same object on every change.
const service = (i: number, addresses: string[]): VirtualService =>
  Object.freeze({
    mark: 256 + i,
    vip: v4(VIPS, i),
    ports: Object.freeze([Object.freeze({ proto: 'tcp' as const, port: 80, targetPort: 8080 })]) as never,
    scheduler: 'rr' as const,
    backends: Object.freeze(addresses.map((address) => Object.freeze({ address, weight: 1 }))) as never,
  });

const services = (): VirtualService[] =>
  Array.from({ length: SERVICES }, (_, i) =>
    service(
      i,
      [0, 1, 2].map((j) => v4(BACKENDS, 3 * i + j)),
    ),
  );

const ms = (t0: number): number => Math.round((performance.now() - t0) * 100) / 100;
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

const netnsMounted = async () => (await readFile('/proc/self/mountinfo', 'utf8')).includes(' /run/netns ');
const mountedBefore = await netnsMounted();
const ns = `cnmd-lbb-${randomBytes(4).toString('hex')}`;
await exec('ip', ['netns', 'add', ns]);
const result: Record<string, unknown> = { bench: 'lb', services: SERVICES, backends_per_service: 3 };
try {
  const desired = services();
  const dp = new NftablesDataPlane({ netns: ns });
  let t0 = performance.now();
  await dp.apply(desired);
  result.full_sync_10k_ms = ms(t0);

  // Untimed: the first change starts the data plane's long-lived `nft -i` (once per process).
  const times: number[] = [];
  for (let k = -1; k < CHANGES; k++) {
    // A task replaced: one backend of one service gets a new address.
    const i = ((k + 1) * 7919) % SERVICES;
    const addresses = desired[i]!.backends.map((b) => b.address);
    addresses[(k + 1) % 3] = v4(BACKENDS, 3 * SERVICES + k + 1);
    desired[i] = service(i, addresses);
    t0 = performance.now();
    await dp.apply(desired);
    if (k >= 0) times.push(ms(t0));
  }
  result.one_change_p50_ms = pct(times, 50);
  result.one_change_p99_ms = pct(times, 99);
  const back = await dp.read();
  if (back.length !== SERVICES) throw new Error(`read back ${back.length} services, not ${SERVICES}`);
  await dp.reset();

  const rules = iptablesRestoreScript(desired);
  t0 = performance.now();
  await execIn(ns)('iptables-restore', [], rules);
  result.iptables_restore_full_10k_ms = ms(t0);

  // The IPVS half (lb/bench/ipvs.bench.ts, by the IPVS data plane's author) adds
  // ipvs_full_sync_10k_ms, ipvs_one_change_p50_ms and ipvsadm_restore_10k_ms here.
} finally {
  await exec('ip', ['netns', 'delete', ns]).catch(() => {});
  if (!mountedBefore && (await readdir('/run/netns').catch(() => [])).length === 0 && (await netnsMounted())) {
    await exec('umount', ['/run/netns']).catch(() => {});
  }
}
console.log(JSON.stringify(result));
