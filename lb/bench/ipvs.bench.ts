// The IPVS half of lb's benchmark, run inside the IPVS VM (lb/bench/ipvs-vm.sh boots it once):
// 10,000 (CNMD_LB_BENCH_SERVICES) fwmark services x 3 backends loaded by one `ipvsadm --restore`
// and programmed by IpvsDataPlane (full sync), each SAMPLES times, medians reported. Every full
// sync, ipvsadm's first, runs in a network namespace made for it: IPVS keeps a deleted
// destination on a per-namespace trash list for minutes and every later add walks that list
// (net/netfilter/ipvs/ip_vs_ctl.c: ip_vs_trash_get_dest), so a load after an earlier one's
// 30,000 deletions measures the trash, not the load. After cnmd's last full sync (in a child
// process started in its namespace, since node cannot enter one), one backend at a time is
// replaced 100 times, each an apply() of the whole desired state with the ApplyHint the
// LoadBalancer gives (then 20 without, for comparison); then the data plane over the stand-in
// socket of ipvs-native.ts, which tells its own share of the time from the kernel's. Prints one
// JSON line; benchIpvs() returns it. Removes every namespace it made, and so what was in them.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { IpvsDataPlane } from '../src/dataplanes/ipvs.js';
import type { VirtualService } from '../src/types.js';
import { benchIpvsNative } from './ipvs-native.js';
import { changeOne, ms, pct, SAMPLES, services } from './services.js';

const exec = promisify(execFile);
/** What every full sync starts from, for the JSON: the figures mean little without it. */
const KERNEL_STATE = 'a fresh network namespace per full sync, ipvsadm --restore first';

export interface IpvsBenchResult {
  bench: 'lb-ipvs';
  services: number;
  samples: number;
  ipvs_kernel_state: string;
  /** Medians of `samples`, each in a fresh namespace; the samples beside. */
  ipvsadm_restore_ms: number;
  ipvsadm_restore_samples_ms: number[];
  ipvs_full_sync_ms: number;
  ipvs_full_sync_samples_ms: number[];
  ipvs_one_change_p50_ms: number;
  ipvs_one_change_p99_ms: number;
  /** 20 more changes without an ApplyHint: every service compared, as before hints. */
  ipvs_one_change_unhinted_p50_ms: number;
  ipvs_read_ms: number;
  /** The data plane's own share in the VM: the same over the stand-in socket (ipvs-native.ts). */
  ipvs_vm_js_full_sync_ms: number;
  ipvs_vm_js_one_change_p50_ms: number;
}

/** One of cnmd's samples, measured in a child process in the namespace made for it. */
interface Sample {
  full: number;
  changes?: { hinted: number[]; unhinted: number[]; read: number };
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

/** Runs `cmd` in network namespace `ns` with `input` on its stdin; its stdout. */
function runIn(ns: string, cmd: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('ip', ['netns', 'exec', ns, ...cmd], { maxBuffer: 64 << 20 }, (err, out, stderr) =>
      err ? reject(new Error(`${cmd.join(' ')} in ${ns}: ${stderr.trim() || err.message}`)) : resolve(out),
    );
    child.stdin?.end(input);
  });
}

/**
 * `ipvsadm --restore` in `ns`, timed around ipvsadm alone (bash's $EPOCHREALTIME), not around
 * `ip netns exec`'s own start; its services are flushed afterwards (not timed).
 */
async function ipvsadmRestore(ns: string, script: string, n: number): Promise<number> {
  const timed = 't0=$EPOCHREALTIME; ipvsadm --restore || exit; echo "$t0 $EPOCHREALTIME"';
  const [t0, t1] = (await runIn(ns, ['bash', '-c', timed], script)).trim().split(' ').map(Number) as [number, number];
  const loaded = (await runIn(ns, ['ipvsadm', '-Sn'])).split('\n').filter((l) => l.startsWith('-A ')).length;
  await runIn(ns, ['ipvsadm', '-C']);
  if (loaded !== n) throw new Error(`ipvsadm --restore loaded ${loaded} services, not ${n}`);
  return Math.round((t1 - t0) * 100_000) / 100;
}

/** One full sync here (in the namespace this process was started in), then the changes if asked. */
async function sample(n: number, changes: number): Promise<Sample> {
  const desired = services(n);
  await using dp = await IpvsDataPlane.create();
  try {
    let t0 = performance.now();
    await dp.apply(desired);
    const full = ms(t0);
    if (changes === 0) return { full };
    // as the LoadBalancer does: the whole desired state, and a hint naming the one service changed
    const hinted: number[] = [];
    for (let k = 0; k < changes; k++) {
      const vs = changeOne(desired, k, n);
      t0 = performance.now();
      await dp.apply(desired, { changed: [vs], removed: [] });
      hinted.push(ms(t0));
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
    return { full, changes: { hinted, unhinted, read } };
  } finally {
    await dp.reset().catch(() => {}); // untimed: the namespace goes empty, not with 10,000 services
  }
}

/** Runs sample() in a child process in `ns`; its result. */
function sampleIn(ns: string, n: number, changes: number): Promise<Sample> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, self, '--sample', String(n), String(changes)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('error', reject);
    child.once('close', (code) => {
      try {
        if (code === 0) return resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as Sample);
      } catch {}
      reject(new Error(`the sample in ${ns} exited ${code}: ${out.trim().slice(-500)}`));
    });
  });
}

export async function benchIpvs(opts: { services?: number; changes?: number } = {}): Promise<IpvsBenchResult> {
  const n = opts.services ?? 10_000;
  const changes = opts.changes ?? 100;
  const made = new Set<string>();
  const fresh = async () => {
    const ns = `cnmd-ipvsb-${randomBytes(4).toString('hex')}`;
    await exec('ip', ['netns', 'add', ns]);
    made.add(ns);
    // lo up makes the namespace's local routing table, without which IPVS finds no address
    // unicast (inet_addr_type) and refuses every NAT destination (EINVAL)
    await exec('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  };
  const drop = async (ns: string) => {
    await exec('ip', ['netns', 'delete', ns]);
    made.delete(ns);
  };
  try {
    const script = restoreScript(services(n));
    const restores: number[] = [];
    for (let s = 0; s < SAMPLES; s++) {
      const ns = await fresh();
      restores.push(await ipvsadmRestore(ns, script, n));
      await drop(ns);
    }
    const fulls: number[] = [];
    let last: Sample | undefined;
    for (let s = 0; s < SAMPLES; s++) {
      const ns = await fresh();
      last = await sampleIn(ns, n, s === SAMPLES - 1 ? changes : 0);
      fulls.push(last.full);
      await drop(ns);
    }
    const { hinted, unhinted, read } = last!.changes!;
    const js = await benchIpvsNative(n, changes, SAMPLES);
    return {
      bench: 'lb-ipvs',
      services: n,
      samples: SAMPLES,
      ipvs_kernel_state: KERNEL_STATE,
      ipvsadm_restore_ms: pct(restores, 50),
      ipvsadm_restore_samples_ms: restores,
      ipvs_full_sync_ms: pct(fulls, 50),
      ipvs_full_sync_samples_ms: fulls,
      ipvs_one_change_p50_ms: pct(hinted, 50),
      ipvs_one_change_p99_ms: pct(hinted, 99),
      ipvs_one_change_unhinted_p50_ms: pct(unhinted, 50),
      ipvs_read_ms: read,
      ipvs_vm_js_full_sync_ms: js.ipvs_native_full_sync_ms,
      ipvs_vm_js_one_change_p50_ms: js.ipvs_native_one_change_p50_ms,
    };
  } finally {
    for (const ns of made) await exec('ip', ['netns', 'delete', ns]).catch(() => {});
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf('--sample');
  if (at > 0) {
    console.log(JSON.stringify(await sample(Number(process.argv[at + 1]), Number(process.argv[at + 2]))));
  } else {
    const n = process.env.CNMD_LB_BENCH_SERVICES;
    console.log(JSON.stringify(await benchIpvs(n ? { services: Number(n) } : {})));
  }
}
