// npm run bench -w @cnmd/lb: 10,000 (CNMD_LB_BENCH_SERVICES) services x 3 backends
// (bench/services.ts), every half beside the way a user would otherwise do it, in one run. Every
// full sync is the median of SAMPLES, each on an empty kernel state:
//  - nftables, here, each sample in a network namespace of its own: a full sync (after the
//    first, 100 changes of one backend each: the whole desired state and the ApplyHint the
//    LoadBalancer gives), then, the data plane's table deleted, one full iptables-restore of
//    kube-proxy-style DNAT rules for the same services;
//  - IPVS natively, over a stand-in for the netlink socket (bench/ipvs-native.ts): the data
//    plane's own cost, without the kernel's (this host has no IPVS);
//  - IPVS for real, in the VM (bench/ipvs-vm.sh boots it once, bench/ipvs.bench.ts runs
//    there), beside `ipvsadm --restore` of the same services, each full sync in a namespace
//    of its own. Under qemu's emulation (TCG) every instruction and syscall is slower: its
//    figures are the VM's, not a machine's.
// The details go to a line of their own; the LAST line is the summary JSON object. If the VM
// cannot run (CNMD_LB_BENCH_VM=0 skips it), its fields are null and a line says why.
// Targets (lb/README.md): full sync <= 1 s, one change <= 5 ms p50. Everything it made is
// removed at the end, even on failure.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NftablesDataPlane } from '../src/dataplanes/nftables.js';
import { execIn } from '../src/exec.js';
import { iptablesRestoreScript } from './iptables.js';
import type { IpvsBenchResult } from './ipvs.bench.js';
import { benchIpvsNative } from './ipvs-native.js';
import { changeOne, ms, pct, SAMPLES, services } from './services.js';

const exec = promisify(execFile);
const SERVICES = Number(process.env.CNMD_LB_BENCH_SERVICES ?? 10_000);
const CHANGES = 100;

interface NftablesResult {
  full_sync_ms: number;
  full_sync_samples_ms: number[];
  one_change_p50_ms: number;
  one_change_p99_ms: number;
  iptables_restore_full_ms: number;
  iptables_restore_full_samples_ms: number[];
}

async function benchNftables(): Promise<NftablesResult> {
  const netnsMounted = async () => (await readFile('/proc/self/mountinfo', 'utf8')).includes(' /run/netns ');
  const mountedBefore = await netnsMounted();
  const made = new Set<string>();
  try {
    const full: number[] = [];
    const restore: number[] = [];
    const times: number[] = [];
    for (let s = 0; s < SAMPLES; s++) {
      const ns = `cnmd-lbb-${randomBytes(4).toString('hex')}`;
      await exec('ip', ['netns', 'add', ns]);
      made.add(ns);
      const desired = services(SERVICES);
      const dp = new NftablesDataPlane({ netns: ns });
      let t0 = performance.now();
      await dp.apply(desired);
      full.push(ms(t0));

      // After the first full sync only. Untimed: the first change starts the data plane's
      // long-lived `nft -i` (once per data plane).
      for (let k = -1; s === 0 && k < CHANGES; k++) {
        const vs = changeOne(desired, k + 1, SERVICES);
        t0 = performance.now();
        await dp.apply(desired, { changed: [vs], removed: [] });
        if (k >= 0) times.push(ms(t0));
      }
      const back = await dp.read();
      if (back.length !== SERVICES) throw new Error(`read back ${back.length} services, not ${SERVICES}`);
      await dp.reset();
      await dp.close();

      // In the same namespace, empty again: the same services, unchanged, as kube-proxy writes them.
      const rules = iptablesRestoreScript(services(SERVICES));
      t0 = performance.now();
      await execIn(ns)('iptables-restore', [], rules);
      restore.push(ms(t0));
      // Emptied here, so the kernel does not tear 10,000 chains down while the next sample runs.
      await execIn(ns)('nft', ['flush', 'ruleset']);
      await exec('ip', ['netns', 'delete', ns]);
      made.delete(ns);
    }
    return {
      full_sync_ms: pct(full, 50),
      full_sync_samples_ms: full,
      one_change_p50_ms: pct(times, 50),
      one_change_p99_ms: pct(times, 99),
      iptables_restore_full_ms: pct(restore, 50),
      iptables_restore_full_samples_ms: restore,
    };
  } finally {
    for (const ns of made) await exec('ip', ['netns', 'delete', ns]).catch(() => {});
    if (!mountedBefore && (await readdir('/run/netns').catch(() => [])).length === 0 && (await netnsMounted())) {
      await exec('umount', ['/run/netns']).catch(() => {});
    }
  }
}

/** Boots the VM once and runs the IPVS half there; its JSON line, or why there is none. */
function benchIpvsVm(): Promise<IpvsBenchResult | string> {
  if (process.env.CNMD_LB_BENCH_VM === '0') return Promise.resolve('skipped (CNMD_LB_BENCH_VM=0)');
  const script = fileURLToPath(new URL('../../bench/ipvs-vm.sh', import.meta.url));
  return new Promise((resolve) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', (e) => resolve(`the VM could not start: ${e.message}`));
    child.once('close', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      try {
        const r = JSON.parse(last) as IpvsBenchResult;
        if (r.bench === 'lb-ipvs') return resolve(r);
      } catch {}
      const why = (err.trim().split('\n').at(-1) ?? '') || last || 'no output';
      resolve(`bench/ipvs-vm.sh exited ${code}: ${why}`);
    });
  });
}

const nft = await benchNftables();
const native = await benchIpvsNative(SERVICES, CHANGES);
const vm = await benchIpvsVm();
const ipvs = typeof vm === 'string' ? undefined : vm;
const { bench: _, services: inVmServices, ...inVm } = ipvs ?? {};
if (ipvs && inVmServices !== SERVICES) throw new Error(`the VM ran ${inVmServices} services, not ${SERVICES}`);
console.log(
  JSON.stringify({
    bench: 'lb-details',
    services: SERVICES,
    backends_per_service: 3,
    samples: SAMPLES,
    ...nft,
    ...native,
    ...inVm,
  }),
);
if (typeof vm === 'string') console.log(`IPVS in the VM: no figures: ${vm}`);
console.log(
  JSON.stringify({
    bench: 'lb',
    services: SERVICES,
    samples: SAMPLES,
    full_sync_ms: nft.full_sync_ms,
    one_change_p50_ms: nft.one_change_p50_ms,
    one_change_p99_ms: nft.one_change_p99_ms,
    iptables_restore_full_ms: nft.iptables_restore_full_ms,
    ipvs_full_sync_ms: ipvs?.ipvs_full_sync_ms ?? null,
    ipvs_one_change_p50_ms: ipvs?.ipvs_one_change_p50_ms ?? null,
    ipvsadm_restore_ms: ipvs?.ipvsadm_restore_ms ?? null,
    ipvs_kernel_state: ipvs?.ipvs_kernel_state ?? null,
  }),
);
