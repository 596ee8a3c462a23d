// Several hosts, one view: three simulated hosts (each a namespace with its own cnmd daemon)
// and a three-node NATS JetStream cluster on an underlay between them (e2e/src/cluster-lab.ts).
// What a user of each host sees with dig: names, aliases, PTR, service VIPs and tasks.<service>
// of containers on the other hosts; a host that dies goes from every answer after the grace;
// NATS servers dying one or all; three hosts racing for the last addresses of a small subnet.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterLab } from '../src/cluster-lab.js';
import type { Netns } from '../src/netns.js';

const GRACE_MS = 2500;
let lab: ClusterLab;

beforeAll(async () => {
  lab = await ClusterLab.start({ hosts: 3, nats: 3, daemonArgs: ['--cluster-grace-ms', String(GRACE_MS)] });
  await lab.hosts[0]!.ok('network', 'create', 'shared', '--scope', 'global');
  await until(async () => (await Promise.all(lab.hosts.map((h) => networks(h)))).every((n) => n.includes('shared')));
}, 120_000);

afterAll(async () => {
  await lab?.close();
});

async function until(ok: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error('not within the time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const networks = async (h: (typeof lab.hosts)[number]) =>
  (await h.json<{ name: string }[]>('network', 'ls')).map((n) => n.name);

const dig = async (ns: Netns, ...args: string[]) =>
  (await ns.exec('dig', ['@127.0.0.11', '+short', '+time=2', '+tries=1', ...args])).trim();

async function container(i: number, name: string, ...args: string[]): Promise<{ ns: Netns; ip: string }> {
  const ns = await lab.sandbox(i, `cnmd-c${i}`);
  const ep = JSON.parse(
    await lab.hosts[i]!.ok('attach', ns.name, '--network', 'shared', '--name', name, '--json', ...args),
  );
  return { ns, ip: ep.ip as string };
}

describe('names across hosts', () => {
  let alpha: { ns: Netns; ip: string };
  let beta: { ns: Netns; ip: string };

  beforeAll(async () => {
    alpha = await container(0, 'alpha', '--alias', 'first');
    beta = await container(1, 'beta');
  });

  it('a global network is on every host, with its scope, one subnet from 10.0.0.0/8', async () => {
    const ls = await Promise.all(
      lab.hosts.map((h) => h.json<{ name: string; scope?: string; subnet: string; id: string }[]>('network', 'ls')),
    );
    const shared = ls.map((l) => l.find((n) => n.name === 'shared')!);
    expect(new Set(shared.map((n) => `${n.id} ${n.scope} ${n.subnet}`)).size).toBe(1);
    expect(shared[0]).toMatchObject({ scope: 'global', subnet: expect.stringMatching(/^10\./) });
    expect((await lab.hosts[2]!.ok('network', 'ls')).split('\n')[0]).toMatch(/SCOPE/);
  });

  it('a container on host0 answers by name, name.network, alias and PTR on host1', async () => {
    await until(async () => (await dig(beta.ns, 'alpha')) === alpha.ip);
    expect(await dig(beta.ns, 'alpha.shared')).toBe(alpha.ip);
    expect(await dig(beta.ns, 'first')).toBe(alpha.ip);
    expect(await dig(beta.ns, '-x', alpha.ip)).toBe('alpha.shared.');
    expect(await dig(alpha.ns, 'beta')).toBe(beta.ip);
    expect(alpha.ip).not.toBe(beta.ip);
  });

  it('a detached container is gone from the other hosts at once', async () => {
    const gone = await container(0, 'brief');
    await until(async () => (await dig(beta.ns, 'brief')) === gone.ip);
    await lab.hosts[0]!.ok('detach', gone.ns.name);
    await until(async () => (await dig(beta.ns, 'brief')) === '', 2000);
  });

  it('a service on host2 balances its tasks of host0 and host1: VIP, tasks.<service>, backends', async () => {
    const vip = (await lab.hosts[2]!.ok('service', 'create', 'web', '--network', 'shared', '--port', '80')).trim();
    const t0 = await container(0, 'web-0', '--service', 'web');
    const t1 = await container(1, 'web-1', '--service', 'web');
    const client = await container(2, 'client');
    await until(async () => (await dig(client.ns, 'web')) === vip);
    await until(
      async () => (await dig(client.ns, 'tasks.web')).split('\n').sort().join() === [t0.ip, t1.ip].sort().join(),
    );
    const backends = await lab.hosts[2]!.json<{ address: string }[]>('service', 'backends', 'web');
    expect(backends.map((b) => b.address).sort()).toEqual([t0.ip, t1.ip].sort());
    // every host answers the service, with the one VIP
    expect(await dig(alpha.ns, 'web')).toBe(vip);
  });

  it('cluster status lists the hosts, alive, and the connection', async () => {
    const s = await lab.hosts[1]!.json<{ host: string; connected: boolean; hosts: { host: string; alive: boolean }[] }>(
      'cluster',
      'status',
    );
    expect(s).toMatchObject({ host: 'host1', connected: true });
    expect(s.hosts.map((h) => `${h.host} ${h.alive}`).sort()).toEqual(['host0 true', 'host1 true', 'host2 true']);
  });
});
