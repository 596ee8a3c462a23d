// The IPVS half of lb's benchmark, run inside the IPVS VM (lb/bench/ipvs-vm.sh boots it once):
// programs 10,000 fwmark services x 3 backends with IpvsDataPlane (full sync), then replaces one
// backend at a time 100 times, each an apply() of the whole desired state with the ApplyHint the
// LoadBalancer gives (then 20 without, for comparison); beside it, the same rules loaded by one
// `ipvsadm --restore`; then the data plane over the stand-in socket of ipvs-native.ts, which
// tells its own share of the time from the kernel's. Prints one JSON line; benchIpvs() returns
// it, so the combined `npm run bench -w @cnmd/lb` can call it. Removes everything it programmed.
import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { IpvsDataPlane } from '../src/dataplanes/ipvs.js';
import type { VirtualService } from '../src/types.js';
import { benchIpvsNative } from './ipvs-native.js';
import { changeOne, ms, pct, services } from './services.js';

export interface IpvsBenchResult {
  bench: 'lb-ipvs';
  services: number;
  ipvs_full_sync_10k_ms: number;
  ipvs_one_change_p50_ms: number;
  ipvs_one_change_p99_ms: number;
  /** 20 more changes without an ApplyHint: every service compared, as before hints. */
  ipvs_one_change_unhinted_p50_ms: number;
  ipvs_read_10k_ms: number;
  ipvsadm_restore_10k_ms: number;
  /** The data plane's own share in the VM: the same over the stand-in socket (ipvs-native.ts). */
  ipvs_vm_js_full_sync_10k_ms: number;
  ipvs_vm_js_one_change_p50_ms: number;
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

    // as the LoadBalancer does: the whole desired state, and a hint naming the one service changed
    const times: number[] = [];
    for (let k = 0; k < changes; k++) {
      const vs = changeOne(desired, k, n);
      t0 = performance.now();
      await dp.apply(desired, { changed: [vs], removed: [] });
      times.push(ms(t0));
    }
    const unhinted: number[] = [];
    for (let k = changes; k < changes + 20; k++) {
      changeOne(desired, k, n);
      t0 = performance.now();
      await dp.apply(desired);
      unhinted.push(ms(t0));
    }
    t0 = performance.now();
    const back = await dp.read();
    const read = ms(t0);
    if (back.length !== n) throw new Error(`read back ${back.length} services, not ${n}`);
    await dp.reset();

    t0 = performance.now();
    await ipvsadm(['--restore'], restoreScript(desired));
    const restore = ms(t0);
    await dp.reset();
    const js = await benchIpvsNative(n, changes);
    return {
      bench: 'lb-ipvs',
      services: n,
      ipvs_full_sync_10k_ms: full,
      ipvs_one_change_p50_ms: pct(times, 50),
      ipvs_one_change_p99_ms: pct(times, 99),
      ipvs_one_change_unhinted_p50_ms: pct(unhinted, 50),
      ipvs_read_10k_ms: read,
      ipvsadm_restore_10k_ms: restore,
      ipvs_vm_js_full_sync_10k_ms: js.ipvs_native_full_sync_10k_ms,
      ipvs_vm_js_one_change_p50_ms: js.ipvs_native_one_change_p50_ms,
    };
  } finally {
    await dp.reset().catch(() => {}); // also what ipvsadm --restore loaded: every fwmark service
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = process.env.CNMD_LB_BENCH_SERVICES;
  console.log(JSON.stringify(await benchIpvs(n ? { services: Number(n) } : {})));
}
