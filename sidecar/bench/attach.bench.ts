// npm run bench -w @cnmd/sidecar: attaches then detaches 1,000 sandboxes through a running
// daemon in a simulated host namespace, and prints attach/detach latency (p50/p99, as the CLI
// sees it over the admin socket), the RSS and open fds of the daemon and its child processes
// (the nft worker every attach uses) at 1,000 sandboxes and after detaching all, and what leaked. Beside it, the same endpoint made by hand with `ip` commands
// (what a script or CNI-style plugin does per container), timed in the same run.
// Run as root. Everything lives in namespaces made here and is removed at the end.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ApiClient } from '../src/api/client.js';
import { netnsMountGuard } from './netns-mount.js';

const exec = promisify(execFile);
const N = Number(process.env.CNMD_BENCH_SANDBOXES ?? 1000);
const PEER_N = Math.min(N, 100);
const tag = `cnmd-b${randomBytes(3).toString('hex')}`;
const hostNs = `${tag}-h`;
const cnmd = fileURLToPath(new URL('../../bin/cnmd.js', import.meta.url));

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 100) / 100;
};

async function ip(...args: string[]): Promise<string> {
  return (await exec('ip', args)).stdout;
}

/** `pid` and every process descended from it, from the parent pid in each /proc/PID/stat. */
async function processTree(pid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'latin1').catch(() => undefined);
    if (!stat) continue; // exited meanwhile
    // proc(5): "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const siblings = children.get(ppid);
    if (siblings) siblings.push(Number(entry));
    else children.set(ppid, [Number(entry)]);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/**
 * RSS and open fds of the daemon and all its descendants (the nft worker it forks, and anything
 * running at the time), summed: pages shared between them (node's own) count once per process.
 */
async function daemonStats(pid: number): Promise<{ rssKiB: number; fds: number; processes: number }> {
  let rssKiB = 0;
  let fds = 0;
  let processes = 0;
  for (const p of await processTree(pid)) {
    try {
      const status = await readFile(`/proc/${p}/status`, 'utf8');
      const fdList = await readdir(`/proc/${p}/fd`);
      rssKiB += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0); // none for a zombie
      fds += fdList.length;
      processes++;
    } catch {} // exited meanwhile
  }
  return { rssKiB, fds, processes };
}

const dir = await mkdtemp(join(tmpdir(), 'cnmd-bench-'));
const releaseNetnsMount = await netnsMountGuard();
const sandboxes = Array.from({ length: N }, (_, i) => `${tag}-${i}`);
let daemon: ChildProcess | undefined;
try {
  await ip('netns', 'add', hostNs);
  await writeFile(join(dir, 'resolv.conf'), 'options ndots:0\n');
  daemon = spawn(
    'nsenter',
    [
      `--net=/run/netns/${hostNs}`,
      process.execPath,
      cnmd,
      'daemon',
      '--state-dir',
      dir,
      '--socket',
      join(dir, 'sock'),
      '--resolv-conf',
      join(dir, 'resolv.conf'),
      '--dns-upstream',
      '127.0.0.1:1',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const api = new ApiClient(join(dir, 'sock'));
  for (let i = 0; ; i++) {
    try {
      await api.call('GET', '/health');
      break;
    } catch (err) {
      if (i > 200) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  for (const s of sandboxes) await ip('netns', 'add', s);
  await api.call('POST', '/networks', { name: 'bench', subnet: '10.200.0.0/16' });
  const pid = daemon.pid!;
  // One attach and detach first: what the daemon makes once and keeps (the nft worker and its
  // channel, the kernel socket of the host) is not a leak of the 1,000 that follow.
  await ip('netns', 'add', `${tag}-warm`);
  await api.call('POST', '/endpoints', { sandbox: `${tag}-warm`, network: 'bench' });
  await api.call('DELETE', `/endpoints?sandbox=${tag}-warm`);
  await ip('netns', 'delete', `${tag}-warm`);
  const base = await daemonStats(pid);

  const attach: number[] = [];
  for (const [i, s] of sandboxes.entries()) {
    const t = performance.now();
    await api.call('POST', '/endpoints', { sandbox: s, network: 'bench', name: `c${i}` });
    attach.push(performance.now() - t);
  }
  const at1000 = await daemonStats(pid);
  const detach: number[] = [];
  for (const s of sandboxes) {
    const t = performance.now();
    await api.call('DELETE', `/endpoints?sandbox=${s}`);
    detach.push(performance.now() - t);
  }
  const after = await daemonStats(pid);
  await api.call('DELETE', '/networks/bench');
  const leftover = (await ip('-n', hostNs, '-o', 'link')).split('\n').filter((l) => /vcn|cnmd-/.test(l)).length;
  let leftInSandboxes = 0;
  for (const s of sandboxes.slice(0, 50)) if ((await ip('-n', s, '-o', 'link')).includes('eth0')) leftInSandboxes++;

  // The peer: the same endpoint made with `ip` processes, as a script would.
  await ip('-n', hostNs, 'link', 'add', 'peerbr', 'type', 'bridge');
  await ip('-n', hostNs, 'link', 'set', 'peerbr', 'up');
  const byHand: number[] = [];
  for (const [i, s] of sandboxes.slice(0, PEER_N).entries()) {
    const t = performance.now();
    const v = `vp${i}`;
    await ip(
      '-n',
      hostNs,
      'link',
      'add',
      v,
      'master',
      'peerbr',
      'up',
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      s,
    );
    await ip('-n', s, 'addr', 'add', `10.201.${i >> 8}.${(i & 255) + 2}/16`, 'dev', 'eth0');
    await ip('-n', s, 'link', 'set', 'eth0', 'up');
    await ip('-n', s, 'link', 'set', 'lo', 'up');
    await ip('-n', s, 'route', 'add', 'default', 'via', '10.201.0.1');
    byHand.push(performance.now() - t);
  }

  const result = {
    bench: 'attach',
    sandboxes: N,
    attach_p50_ms: pct(attach, 50),
    attach_p99_ms: pct(attach, 99),
    detach_p50_ms: pct(detach, 50),
    detach_p99_ms: pct(detach, 99),
    rss_mb_at_1000: Math.round(at1000.rssKiB / 102.4) / 10,
    rss_kib_per_sandbox: Math.round((at1000.rssKiB - base.rssKiB) / N),
    fds_at_1000: at1000.fds,
    processes_at_1000: at1000.processes,
    rss_mb_after_detach: Math.round(after.rssKiB / 102.4) / 10,
    fds_after_detach: after.fds,
    leaked_links: leftover + leftInSandboxes,
    leaked_fds: after.fds - base.fds,
    by_hand_ip_p50_ms: pct(byHand, 50),
  };
  console.log(
    `attach   p50 ${result.attach_p50_ms} ms  p99 ${result.attach_p99_ms} ms   (by hand with ip: p50 ${result.by_hand_ip_p50_ms} ms, no DNS)`,
  );
  console.log(`detach   p50 ${result.detach_p50_ms} ms  p99 ${result.detach_p99_ms} ms`);
  console.log(
    `daemon and children (${result.processes_at_1000} processes) at ${N}: RSS ${result.rss_mb_at_1000} MB (${result.rss_kib_per_sandbox} KiB per sandbox), ${result.fds_at_1000} fds`,
  );
  console.log(
    `after detaching all: RSS ${result.rss_mb_after_detach} MB, ${result.fds_after_detach} fds; leaked links ${result.leaked_links}, fds ${result.leaked_fds}`,
  );
  console.log(JSON.stringify(result));
} finally {
  if (daemon && daemon.exitCode === null) {
    const gone = new Promise((r) => daemon!.once('exit', r));
    daemon.kill('SIGTERM');
    await gone;
  }
  for (const s of sandboxes) {
    await ip('netns', 'delete', s).catch(() => {});
    // The daemon removes the resolv.conf it wrote at detach; not if it died before.
    await rm(`/etc/netns/${s}`, { recursive: true, force: true });
  }
  await ip('netns', 'delete', hostNs).catch(() => {});
  await rm(dir, { recursive: true, force: true });
  await releaseNetnsMount();
}
