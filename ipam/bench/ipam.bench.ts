// npm run bench -w @cnmd/ipam: fill a /16, release every other address, refill; 1,000,000
// allocate+release pairs in a /24; the same with the file store; each beside a naive
// Set-of-strings allocator measured in the same run. The last line is one JSON object.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore, Ipam, MemoryStore, type Store } from '../src/index.js';
import { NaivePool } from './naive.js';

const PAIRS = Number(process.env.CNMD_BENCH_PAIRS ?? 1_000_000);
const ROUNDS = 5;

/** Each timed phase starts from a collected heap, so one phase's garbage is not billed to the next. */
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function newIpam(store: Store = new MemoryStore()): Promise<Ipam> {
  const ipam = new Ipam({ store });
  await ipam.start();
  return ipam;
}

/** Fills a /16 (65,534 addresses: no gateway), releases every other one, refills. */
async function fill16(): Promise<{ fill: number; refill: number }> {
  const ipam = await newIpam();
  const { id } = await ipam.requestPool({ subnet: '10.16.0.0/16', gateway: false });
  gc();
  let t = performance.now();
  const got: string[] = [];
  for (let i = 0; i < 65_534; i++) got.push((await ipam.requestAddress(id)).address);
  const fill = performance.now() - t;
  for (let i = 0; i < got.length; i += 2) await ipam.releaseAddress(id, got[i]!);
  gc();
  t = performance.now();
  for (let i = 0; i < got.length; i += 2) await ipam.requestAddress(id);
  const refill = performance.now() - t;
  if (ipam.pool(id)!.used !== 65_534) throw new Error('fill16: the pool is not full');
  return { fill, refill };
}

async function pairs(n: number): Promise<number> {
  const ipam = await newIpam();
  const { id } = await ipam.requestPool({ subnet: '10.24.0.0/24' });
  gc();
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    const { address } = await ipam.requestAddress(id);
    await ipam.releaseAddress(id, address);
  }
  return n / ((performance.now() - t) / 1000);
}

async function naive(): Promise<{ fill: number; pairsPerS: number }> {
  const p16 = new NaivePool('10.16.0.0/16');
  let t = performance.now();
  // The scan is quadratic: a /16 would take minutes, so fill 8,192 and scale the time.
  for (let i = 0; i < 8192; i++) await p16.request();
  const fill = (((performance.now() - t) * 65_534) / 8192 ** 2) * 8192;
  const p24 = new NaivePool('10.24.0.0/24');
  const n = Math.min(PAIRS, 200_000);
  t = performance.now();
  for (let i = 0; i < n; i++) await p24.release(await p24.request());
  return { fill, pairsPerS: n / ((performance.now() - t) / 1000) };
}

/** Allocations per second on the file store: a /16 filled with `inflight` requests at a time. */
async function fileStore(inflight: number, total: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'cnmd-ipam-bench-'));
  try {
    const store = await FileStore.open(join(dir, 'state.json'));
    const ipam = await newIpam(store);
    const { id } = await ipam.requestPool({ subnet: '10.32.0.0/16' });
    const t = performance.now();
    let started = 0;
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        while (started++ < total) await ipam.requestAddress(id);
      }),
    );
    const perS = total / ((performance.now() - t) / 1000);
    await store.close();
    return perS;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const fills: number[] = [];
const refills: number[] = [];
const rates: number[] = [];
// Warm up the JIT on both paths; the first, cold fill is reported on its own.
const cold = (await fill16()).fill;
await fill16();
await pairs(100_000);
for (let r = 0; r < ROUNDS; r++) {
  const f = await fill16();
  fills.push(f.fill);
  refills.push(f.refill);
  rates.push(await pairs(PAIRS));
}
const peer = await naive();
const fileBurst = median([await fileStore(1024, 20_000), await fileStore(1024, 20_000), await fileStore(1024, 20_000)]);
const fileSerial = await fileStore(1, 300);

const result = {
  bench: 'ipam',
  fill_16_ms: Math.round(median(fills) * 10) / 10,
  fill_16_cold_ms: Math.round(cold * 10) / 10,
  refill_half_16_ms: Math.round(median(refills) * 10) / 10,
  alloc_release_per_s: Math.round(median(rates)),
  file_store_allocs_per_s: Math.round(fileBurst),
  file_store_serial_allocs_per_s: Math.round(fileSerial),
  naive_fill_16_ms: Math.round(peer.fill),
  naive_alloc_release_per_s: Math.round(peer.pairsPerS),
  peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
};
console.log(
  `fill a /16 (65,534 addresses)     ${result.fill_16_ms} ms, cold ${result.fill_16_cold_ms} ms   (naive Set scan: ~${result.naive_fill_16_ms} ms)`,
);
console.log(`refill every other one (32,767)   ${result.refill_half_16_ms} ms`);
console.log(
  `allocate+release pairs in a /24   ${result.alloc_release_per_s}/s   (naive: ${result.naive_alloc_release_per_s}/s)`,
);
console.log(`file store, 1,024 in flight       ${result.file_store_allocs_per_s} allocations/s, each durable`);
console.log(`file store, one at a time         ${result.file_store_serial_allocs_per_s} allocations/s (an fsync each)`);
console.log(`medians of ${ROUNDS} rounds after a warm-up; peak RSS ${result.peak_rss_mb} MB`);
console.log(JSON.stringify(result));
