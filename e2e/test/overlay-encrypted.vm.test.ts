// The encrypted overlay (#14), where the kernel has ESP: the VM's (e2e/scripts/vm-xfrm.sh adds
// esp4 and the AES-GCM modules to the IPVS VM). Three simulated hosts and one NATS server
// (ClusterLab); what is asserted is what a user would check: names answer and traffic flows,
// the underlay shows only ESP, clear VXLAN from anyone is dropped, a rotation during a TCP
// stream drops nothing, and each host's states and policies follow the others.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterLab, UNDERLAY } from '../src/cluster-lab.js';
import type { Netns } from '../src/netns.js';

// Longer than a daemon's start in the VM (20-40 s under TCG), so that a restart is not a host gone.
const GRACE_MS = 60_000;
let lab: ClusterLab;
const procs = new Set<ChildProcess>();
let port = 0;
let vni = 0;
/** Containers a test leaves attached, detached before the network is removed. */
const attached: [number, Netns][] = [];

interface Ctr {
  ns: Netns;
  ip: string;
  mac: string;
}

// The API over each host's socket, from this process: a CLI call would start a node, which costs
// seconds in the VM.
async function api<T = Record<string, unknown>>(i: number, method: string, path: string, body?: unknown): Promise<T> {
  const r = await lab.hosts[i]!.api<T>(method, `/v1${path}`, body);
  if (r.status >= 400) throw new Error(`${method} ${path} on host${i}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

interface Net {
  options: Record<string, string>;
  encryption?: { tags: number[]; primary: number; rotating: boolean };
}
const inspect = (i: number) => api<Net>(i, 'GET', '/networks/secret');

beforeAll(async () => {
  lab = await ClusterLab.start({ hosts: 3, nats: 1, daemonArgs: ['--cluster-grace-ms', String(GRACE_MS)] });
  await api(0, 'POST', '/networks', { name: 'secret', driver: 'overlay', options: { encrypted: '' } });
  await until(async () =>
    (await Promise.all(lab.hosts.map((h) => h.api('GET', '/v1/networks/secret')))).every((r) => r.status === 200),
  );
  const net = await inspect(1);
  port = Number(net.options['vxlan-port']);
  vni = Number(net.options.vni);
}, 600_000);

afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await lab?.close();
});

async function until(ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function container(i: number, name: string): Promise<Ctr> {
  const ns = await lab.sandbox(i, `cnmd-e${i}`);
  const ep = await api<{ ip: string; mac: string }>(i, 'POST', '/endpoints', {
    sandbox: ns.name,
    network: 'secret',
    name,
  });
  return { ns, ip: ep.ip, mac: ep.mac };
}

const detach = (i: number, ns: Netns) => api(i, 'DELETE', `/endpoints?sandbox=${ns.name}`);

const dig = async (ns: Netns, name: string) =>
  (await ns.exec('dig', ['@127.0.0.11', '+short', '+time=2', '+tries=1', name])).trim();

/** A process in a namespace, killed by afterAll if the test does not stop it. */
function start(ns: string, cmd: string, args: string[]): { proc: ChildProcess; out: () => string } {
  const proc = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(proc);
  proc.once('exit', () => procs.delete(proc));
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d));
  proc.stderr!.on('data', (d: Buffer) => (out += d));
  return { proc, out: () => out };
}

async function stop(p: ChildProcess, signal: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
  if (p.exitCode !== null) return p.exitCode;
  const gone = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  p.kill(signal);
  return gone;
}

/** tcpdump on a host's underlay link, until stopped: what it wrote, read back one line a packet. */
async function capture(i: number, filter: string): Promise<{ stop: () => Promise<{ lines: string[]; raw: Buffer }> }> {
  const file = `/tmp/cnmd-esp-${process.pid}-${i}.pcap`;
  const t = start(lab.hosts[i]!.ns.name, 'tcpdump', ['-i', 'ul0', '-nn', '-U', '-w', file, filter]);
  await until(async () => t.out().includes('listening on'), 15_000);
  return {
    stop: async () => {
      await stop(t.proc);
      const raw = await readFile(file);
      const text = await lab.hosts[i]!.ns.exec('tcpdump', ['-nn', '-r', file]);
      await rm(file, { force: true });
      return { lines: text.split('\n').filter(Boolean), raw };
    },
  };
}

/** The kernel's IPsec counters in a host's namespace (/proc/net/xfrm_stat). */
async function xfrmStat(i: number): Promise<Record<string, number>> {
  const text = await lab.hosts[i]!.ns.exec('cat', ['/proc/net/xfrm_stat']);
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .map(([k, v]) => [k!, Number(v)]),
  );
}

/** A host's states and policies, as `ip xfrm` shows them. */
async function xfrm(i: number): Promise<{ states: string; policies: string }> {
  const ns = lab.hosts[i]!.ns;
  return { states: await ns.exec('ip', ['xfrm', 'state']), policies: await ns.exec('ip', ['xfrm', 'policy']) };
}
const spisTo = (states: string, dst: string) =>
  [...states.matchAll(/^src (\S+) dst (\S+)\n\s+proto esp spi (0x[0-9a-f]+)/gm)]
    .filter((m) => m[2] === dst || m[1] === dst)
    .map((m) => m[3]);

describe('an encrypted overlay on three hosts', () => {
  let c0: Ctr;
  let c1: Ctr;

  beforeAll(async () => {
    c0 = await container(0, 'e-zero');
    c1 = await container(1, 'e-one');
    await until(async () => (await dig(c0.ns, 'e-one')) === c1.ip && (await dig(c1.ns, 'e-zero')) === c0.ip);
  }, 120_000);

  it('has a VXLAN port of its own and shows its keys by tag, never a key', async () => {
    expect(port).toBeGreaterThanOrEqual(4800);
    const net = await inspect(2);
    expect(net.encryption).toMatchObject({ tags: [1], primary: 1, rotating: false });
    const states = (await xfrm(0)).states;
    const key = /aead rfc4106\(gcm\(aes\)\) (0x[0-9a-f]+)/.exec(states)?.[1];
    expect(key).toBeDefined();
    for (const h of lab.hosts) expect(h.log).not.toContain(key!.slice(2, 18));
    expect(JSON.stringify(net)).not.toContain(key!.slice(2, 18));
  });

  it('containers on two hosts talk by name; the underlay carries ESP only, no VXLAN and no text in clear', async () => {
    const tap = await capture(1, `ip and host ${lab.address(0)} and host ${lab.address(1)}`);
    await c0.ns.exec('ping', ['-c', '3', '-W', '3', 'e-one']);
    const canary = `cnmd-canary-${process.pid}-in-clear`;
    const server = start(c1.ns.name, 'nc', ['-l', '-p', '7000']);
    await until(async () => (await c1.ns.exec('ss', ['-ltn'])).includes(':7000'), 10_000);
    await c0.ns.exec('sh', ['-c', `echo ${canary} | nc -q 1 e-one 7000`]);
    await until(async () => server.out().includes(canary), 10_000);
    const { lines, raw } = await tap.stop();
    expect(lines.length).toBeGreaterThan(6);
    for (const l of lines) expect(l).toMatch(/ESP\(spi=0x[0-9a-f]+,seq=0x[0-9a-f]+\)/);
    expect(lines.join('\n')).not.toMatch(/UDP|VXLAN|ICMP/);
    expect(raw.includes(canary)).toBe(false);
  });

  it('clear VXLAN to its port is dropped, whoever sends it: nothing reaches a container', async () => {
    // A rogue VTEP on the underlay (the lab's own namespace, no IPsec), with the network's VNI
    // and port, that knows c0's MAC and host: its frames reach host0 and go no further.
    const lns = lab.ns;
    const rogue = '10.255.255.254';
    await lns.exec('ip', [
      'link',
      'add',
      'rogue0',
      'type',
      'vxlan',
      'id',
      String(vni),
      'dstport',
      String(port),
      'local',
      `${UNDERLAY}.1`,
      'nolearning',
    ]);
    try {
      await lns.exec('ip', ['addr', 'add', `${rogue}/8`, 'dev', 'rogue0']);
      await lns.exec('ip', ['link', 'set', 'rogue0', 'up']);
      await lns.exec('bridge', ['fdb', 'append', c0.mac, 'dev', 'rogue0', 'dst', lab.address(0)]);
      await lns.exec('ip', ['neigh', 'replace', c0.ip, 'lladdr', c0.mac, 'dev', 'rogue0', 'nud', 'permanent']);
      const before = await xfrmStat(0);
      const seen = start(c0.ns.name, 'tcpdump', ['-i', 'eth0', '-nn', '-l', 'icmp']);
      await until(async () => seen.out().includes('listening on'), 15_000);
      await lns.exec('ping', ['-c', '3', '-i', '0.2', '-W', '1', c0.ip]).catch(() => '');
      await new Promise((r) => setTimeout(r, 500));
      await stop(seen.proc);
      expect(seen.out()).not.toContain(rogue);
      // They did arrive, and the policy took them: counted, not lost on the way.
      const after = await xfrmStat(0);
      expect(
        after.XfrmInTmplMismatch! + after.XfrmInNoStates! - before.XfrmInTmplMismatch! - before.XfrmInNoStates!,
      ).toBeGreaterThanOrEqual(3);
    } finally {
      await lns.exec('ip', ['link', 'del', 'rogue0']).catch(() => {});
    }
  });

  it('a key rotation during a TCP stream: the stream goes on, no packet is dropped for want of a state', async () => {
    const before = spisTo((await xfrm(0)).states, lab.address(1));
    const stats = [await xfrmStat(0), await xfrmStat(1)];
    const server = start(c1.ns.name, 'iperf3', ['-s', '-1', '--forceflush']);
    await until(async () => server.out().includes('listening'), 15_000);
    const client = start(c0.ns.name, 'iperf3', ['-c', c1.ip, '-t', '8', '--json']);
    await new Promise((r) => setTimeout(r, 2000));
    const rotated = await api<{ network: string; tag: number; ms: number }>(2, 'POST', '/networks/secret/rotate-key');
    expect(rotated).toMatchObject({ network: 'secret', tag: 2 });
    expect(await new Promise((r) => client.proc.once('exit', r))).toBe(0);
    const report = JSON.parse(client.out()) as { end: { sum_received: { bytes: number } }; error?: string };
    expect(report.error).toBeUndefined();
    expect(report.end.sum_received.bytes).toBeGreaterThan(0);
    for (const [i, s] of [await xfrmStat(0), await xfrmStat(1)].entries()) {
      for (const k of [
        'XfrmInNoStates',
        'XfrmOutNoStates',
        'XfrmInTmplMismatch',
        'XfrmOutPolBlock',
        'XfrmInStateProtoError',
      ]) {
        expect(`${k} ${s[k]! - stats[i]![k]!}`).toBe(`${k} 0`);
      }
    }
    // New states, their old ones gone, on both sides; the keys shown are tag 2 alone.
    const after = spisTo((await xfrm(0)).states, lab.address(1));
    expect(after).toHaveLength(2);
    expect(after.filter((s) => before.includes(s))).toEqual([]);
    expect(spisTo((await xfrm(1)).states, lab.address(0)).sort()).toEqual([...after].sort());
    const net = await inspect(0);
    expect(net.encryption).toMatchObject({ tags: [2], primary: 2, rotating: false });
  });

  it("a host's policy comes and goes with its containers, its states with the key; a host gone takes the key with it", async () => {
    const at2 = async () => {
      const x = await xfrm(0);
      return {
        states: spisTo(x.states, lab.address(2)).length,
        policy: x.policies.includes(`dst ${lab.address(2)}/32`),
      };
    };
    expect(await at2()).toEqual({ states: 0, policy: false });
    const c2 = await container(2, 'e-two');
    await until(async () => (await at2()).policy);
    expect(await at2()).toEqual({ states: 2, policy: true });
    await c2.ns.exec('ping', ['-c', '2', '-W', '3', 'e-zero']);
    // Its last container gone: nothing is sent to it; its states stay while their key does, so
    // that both ends go on where their sequence numbers were when it has containers again.
    await detach(2, c2.ns);
    await until(async () => !(await at2()).policy);
    expect(await at2()).toEqual({ states: 2, policy: false });
    const again = await container(2, 'e-two-again');
    attached.push([2, again.ns]);
    await until(async () => (await at2()).policy);
    await again.ns.exec('ping', ['-c', '2', '-W', '3', 'e-zero']);
    // The host dies: once the grace is over, the others rotate the key without it, and its
    // states go everywhere; back, it takes the new key, and traffic flows again.
    const tag = (await inspect(0)).encryption!.primary;
    await lab.hosts[2]!.kill9();
    await until(
      async () => (await at2()).states === 0 && (await inspect(0)).encryption!.primary === tag + 1,
      GRACE_MS + 60_000,
    );
    expect(await at2()).toEqual({ states: 0, policy: false });
    // host1 applies the same keys record in its own time: its states to host2 go too.
    await until(async () => spisTo((await xfrm(1)).states, lab.address(2)).length === 0);
    await lab.hosts[2]!.startDaemon();
    await until(async () => (await at2()).policy && (await at2()).states === 2, 120_000);
    await again.ns.exec('ping', ['-c', '2', '-W', '3', 'e-zero']);
  }, 400_000);

  it('a daemon killed and started again rewrites nothing that is right, and traffic never stops', async () => {
    // What identifies each state (addresses, SPI, key), not its counters, which traffic moves.
    const idOf = (x: { states: string; policies: string }) => ({
      states: x.states.replace(/^\s*anti-replay context:.*\n/gm, ''),
      policies: x.policies,
    });
    const before = idOf(await xfrm(0));
    await lab.hosts[0]!.kill9();
    // Meanwhile the kernel keeps encrypting with what it holds.
    await c1.ns.exec('ping', ['-c', '2', '-W', '3', c0.ip]);
    await lab.hosts[0]!.startDaemon();
    await lab.connected(0);
    await until(async () => (await dig(c0.ns, 'e-one')) === c1.ip);
    expect(idOf(await xfrm(0))).toEqual(before);
  }, 300_000);

  it('removed, the network leaves no state and no policy on any host', async () => {
    for (const [i, ns] of [[0, c0.ns] as const, [1, c1.ns] as const, ...attached]) await detach(i, ns);
    await api(1, 'DELETE', '/networks/secret');
    for (const [i] of lab.hosts.entries()) {
      await until(async () => {
        const x = await xfrm(i);
        return x.states.trim() === '' && x.policies.trim() === '';
      });
    }
  });
});
