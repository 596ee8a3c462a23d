// The IPVS half of lb's benchmark, run inside the IPVS VM (lb/bench/ipvs-vm.sh boots it once):
// programs 10,000 fwmark services x 3 backends with IpvsDataPlane (full sync), then replaces one
// backend at a time 100 times, each an apply() of the whole desired state; beside it, the same
// rules loaded by one `ipvsadm --restore`. Prints one JSON line; benchIpvs() returns it, so the
// combined `npm run bench -w @cnmd/lb` can call it. Removes everything it programmed.
import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { IpvsDataPlane } from '../src/dataplanes/ipvs.js';
import type { VirtualService } from '../src/types.js';

export interface IpvsBenchResult {
  bench: 'lb-ipvs';
  services: number;
  ipvs_full_sync_10k_ms: number;
  ipvs_one_change_p50_ms: number;
  ipvs_one_change_p99_ms: number;
  ipvs_read_10k_ms: number;
  ipvsadm_restore_10k_ms: number;
}

const v4 = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
const BACKENDS = (10 << 24) | (64 << 16); // 10.64.0.0/10: 3 x 10,000 backends and spares
const VIPS = (10 << 24) | (128 << 16);
const ms = (t0: number): number => Math.round((performance.now() - t0) * 100) / 100;
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

/** The same shape as the nftables half (lb.bench.ts): port 80 to 8080, rr, three backends. */
function services(n: number): VirtualService[] {
  return Array.from({ length: n }, (_, i) => ({
    mark: 256 + i,
    vip: v4(VIPS + i),
    ports: [{ proto: 'tcp' as const, port: 80, targetPort: 8080 }],
    scheduler: 'rr' as const,
    backends: [0, 1, 2].map((j) => ({ address: v4(BACKENDS + 3 * i + j), weight: 1 })),
  }));
}

/** ipvsadm's own save format (ipvsadm -S), which --restore reads: the same services and dests. */
const restoreScript = (vs: VirtualService[]): string =>
  vs
    .map((s) =>
      [
        `-A -f ${s.mark} -s ${s.scheduler}`,
        ...s.backends.map((b) => `-a -f ${s.mark} -r ${b.address}:8080 -m -w ${b.weight}`),
      ].join('\n'),
    )
    .join('\n')
    .concat('\n');

function ipvsadm(args: string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('ipvsadm', args, { maxBuffer: 64 << 20 }, (err, _out, stderr) =>
      err ? reject(new Error(`ipvsadm ${args.join(' ')}: ${stderr || err.message}`)) : resolve(),
    );
    child.stdin?.end(input ?? '');
  });
}

export async function benchIpvs(opts: { services?: number; changes?: number } = {}): Promise<IpvsBenchResult> {
  const n = opts.services ?? 10_000;
  const changes = opts.changes ?? 100;
  const desired = services(n);
  await using dp = await IpvsDataPlane.create();
  await dp.reset(); // a clean start: no fwmark service left from an earlier run
  try {
    let t0 = performance.now();
    await dp.apply(desired);
    const full = ms(t0);

    const times: number[] = [];
    for (let k = 0; k < changes; k++) {
      // a task replaced: one backend of one service gets a new address (DEL_DEST + NEW_DEST)
      const vs = desired[(k * 7919) % n]!;
      vs.backends[k % 3] = { address: v4(BACKENDS + 3 * n + k), weight: 1 };
      t0 = performance.now();
      await dp.apply(desired);
      times.push(ms(t0));
    }
    t0 = performance.now();
    const back = await dp.read();
    const read = ms(t0);
    if (back.length !== n) throw new Error(`read back ${back.length} services, not ${n}`);
    await dp.reset();

    t0 = performance.now();
    await ipvsadm(['--restore'], restoreScript(desired));
    const restore = ms(t0);
    return {
      bench: 'lb-ipvs',
      services: n,
      ipvs_full_sync_10k_ms: full,
      ipvs_one_change_p50_ms: pct(times, 50),
      ipvs_one_change_p99_ms: pct(times, 99),
      ipvs_read_10k_ms: read,
      ipvsadm_restore_10k_ms: restore,
    };
  } finally {
    await dp.reset().catch(() => {}); // also what ipvsadm --restore loaded: every fwmark service
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = process.env.CNMD_LB_BENCH_SERVICES;
  console.log(JSON.stringify(await benchIpvs(n ? { services: Number(n) } : {})));
}
