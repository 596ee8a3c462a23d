// The harness of the multi-host tests (#12) on its own: a real three-server JetStream cluster,
// an R3 bucket through crashes and a full restart, simulated hosts that reach it over the
// underlay and nothing else, and nothing left behind. The daemons run without --cluster until
// they understand it (`cluster: false`).
import { existsSync } from 'node:fs';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it, vi } from 'vitest';
import { ClusterLab } from '../src/cluster-lab.js';
import { TestHost } from '../src/daemon-harness.js';
import { NatsCluster } from '../src/nats-cluster.js';
import { Netns, run } from '../src/netns.js';

const alive = (pid: number | undefined): boolean => {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const netnsList = async (): Promise<string[]> =>
  (await run('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0] ?? '');

// Script bodies for ClusterLab.natsRun (run by node inside a host namespace).
const CREATE = `const kv = await new Kvm(nc).create(args[0], { replicas: 3 });
const info = await (await jetstreamManager(nc)).streams.info('KV_' + args[0]);
return { replicas: 1 + info.cluster.replicas.length, leader: info.cluster.leader };`;
const PUT = 'return (await new Kvm(nc).open(args[0])).put(args[1], args[2]);';
const GET = `const kv = await new Kvm(nc).open(args[0]);
const out = {}; for (const k of args.slice(1)) out[k] = (await kv.get(k))?.string() ?? null; return out;`;

describe('NatsCluster on loopback', () => {
  it('forms a JetStream cluster whose R3 bucket loses nothing when the server a client is on is killed', async () => {
    const nats = await NatsCluster.start();
    const nc = await connect({ servers: nats.urls, maxReconnectAttempts: -1 });
    try {
      expect(nats.urls).toHaveLength(3);
      expect(new Set(nats.urls).size).toBe(3);
      for (const u of nats.urls) expect(u).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
      const kv = await new Kvm(nc).create('lab', { replicas: 3 });
      const info = await (await jetstreamManager(nc)).streams.info('KV_lab');
      expect(info.cluster?.replicas).toHaveLength(2);
      await kv.put('a', '1');

      const on = [0, 1, 2].find((i) => nats.name(i) === nc.info?.server_name)!;
      await nats.kill(on);
      expect(nats.running(on)).toBe(false);
      // Had it led the bucket's stream, puts fail until the survivors elect another (seconds on
      // 2.9): ready() waits for that. A put in flight while the client reconnects times out: retried.
      await nats.ready();
      for (let tries = 1; ; tries++) {
        try {
          await kv.put('b', '2');
          break;
        } catch (err) {
          if (tries === 3) throw err;
        }
      }
      expect(nc.info?.server_name).not.toBe(nats.name(on));
      expect((await kv.get('a'))?.string()).toBe('1');

      await nats.restart(on);
      await nats.ready();
      expect(nats.log(on)).toContain('JetStream cluster recovering state');
    } finally {
      await nc.close();
      await nats.close();
    }
    await nats.close(); // idempotent
    expect([0, 1, 2].some((i) => nats.running(i))).toBe(false);
    expect(existsSync(nats.dir)).toBe(false);
  });
});

describe('ClusterLab', () => {
  it('gives each host the underlay and an R3 bucket it shares with the others; close() leaves nothing', async () => {
    const lab = await ClusterLab.start({ cluster: false });
    const made = [lab.ns.name, ...lab.hosts.map((h) => h.ns.name)];
    const pids = [...[0, 1, 2].map((i) => lab.nats.pid(i)), ...lab.hosts.map((h) => h.pid)];
    const dirs = [lab.nats.dir, ...lab.hosts.map((h) => h.dir)];
    try {
      expect(lab.hosts).toHaveLength(3);
      expect(lab.nats.urls.every((u) => u.startsWith('nats://198.18.0.1:'))).toBe(true);
      expect(pids.every(alive)).toBe(true);
      const sb = await lab.sandbox(1);
      made.push(sb.name);
      expect(await lab.natsRun(0, CREATE, 'lab')).toMatchObject({ replicas: 3 });
      expect(await lab.natsRun(0, PUT, 'lab', 'from', 'host0')).toBeGreaterThan(0);
      for (const i of [1, 2]) expect(await lab.natsRun(i, GET, 'lab', 'from')).toEqual({ from: 'host0' });
      // The server saw the host's underlay address (its INFO tells a client its own address).
      expect(await lab.natsRun(2, 'return nc.info.client_ip;')).toBe(lab.address(2));
    } finally {
      await lab.close();
    }
    await lab.close(); // idempotent
    const left = await netnsList();
    expect(made.filter((n) => left.includes(n))).toEqual([]);
    expect(pids.filter(alive)).toEqual([]);
    expect(dirs.filter((d) => existsSync(d))).toEqual([]);
  });

  it('reaches the NATS servers and the other hosts over the underlay, and nothing else', async () => {
    await using lab = await ClusterLab.start({ hosts: 2, cluster: false });
    for (const [i, h] of lab.hosts.entries()) {
      // Every server, one connection each, from inside the host namespace.
      const names = await lab.natsRun(
        i,
        `const out = []; for (const s of servers) { const c = await connect({ servers: s, timeout: 3000 });
         out.push(c.info.server_name); await c.close(); } return out;`,
      );
      expect(names).toEqual(['n0', 'n1', 'n2']);
      await h.ns.exec('ping', ['-c1', '-W2', lab.address(1 - i)]);
      // Only the underlay's own subnet is routed: no default route, nothing off the machine.
      const routes = (await h.ns.exec('ip', ['-4', 'route', 'show', 'table', 'all', 'type', 'unicast'])).trim();
      expect(routes.split('\n')).toEqual([
        expect.stringMatching(/^198\.18\.0\.0\/24 dev ul0 proto kernel scope link src 198\.18\.0\.1\d\b/),
      ]);
      await expect(h.ns.exec('ip', ['route', 'get', '192.0.2.1'])).rejects.toThrow(/unreachable/);
    }
    const labRoutes = await lab.ns.exec('ip', ['-4', 'route', 'show', 'table', 'all', 'type', 'unicast']);
    expect(labRoutes.trim()).toMatch(/^198\.18\.0\.0\/24 dev ul0 [^\n]*$/);
  });

  it('keeps the bucket through a killed server and through stopping and starting them all', async () => {
    await using lab = await ClusterLab.start({ hosts: 2, cluster: false });
    await lab.natsRun(0, CREATE, 'keep');
    await lab.natsRun(0, PUT, 'keep', 'a', '1');

    await lab.nats.kill(0);
    await lab.nats.ready(); // a new leader, had n0 been one
    await lab.natsRun(1, PUT, 'keep', 'b', '2'); // through n1 or n2
    await lab.nats.restart(0);
    await lab.nats.ready();

    await lab.nats.stopAll();
    await expect(lab.natsRun(1, GET, 'keep', 'a')).rejects.toThrow();
    await lab.nats.startAll();
    await lab.nats.ready();
    for (const i of [0, 1]) expect(await lab.natsRun(i, GET, 'keep', 'a', 'b')).toEqual({ a: '1', b: '2' });
  });

  it('removes what it made when a daemon does not start', async () => {
    // What this start makes, seen through spies (other test files make namespaces and temp dirs
    // of the same names at the same time): its namespaces, its hosts' dirs, its NATS servers.
    const made = vi.spyOn(Netns, 'create');
    const daemons = vi.spyOn(TestHost.prototype, 'startDaemon');
    const clusters = vi.spyOn(NatsCluster, 'start');
    try {
      const failing = ClusterLab.start({ hosts: 2, cluster: false, daemonArgs: ['--cnmd-test-no-such-flag'] });
      await expect(failing).rejects.toThrow(/daemon exited/);
      const names = await Promise.all(made.mock.results.map(async (r) => ((await r.value) as Netns).name));
      expect(names).toHaveLength(3); // the lab and two hosts
      const left = await netnsList();
      expect(names.filter((n) => left.includes(n))).toEqual([]);
      const dirs = [
        ...(daemons.mock.contexts as TestHost[]).map((h) => h.dir),
        ((await clusters.mock.results[0]!.value) as NatsCluster).dir,
      ];
      expect(dirs.filter((d) => existsSync(d))).toEqual([]);
      // The servers were this process's children (`ip netns exec` execs them in place).
      expect(await run('pgrep', ['-P', String(process.pid), '-x', 'nats-server']).catch(() => '')).toBe('');
    } finally {
      vi.restoreAllMocks();
    }
  });
});
