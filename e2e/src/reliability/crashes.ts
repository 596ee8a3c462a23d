// Part 1 of the reliability campaign (#16): kill -9 of the daemon at random moments while
// clients attach, detach and create and remove services, then a restart; after each restart,
// what each client was told is checked against the records, the kernel and DNS:
// - lost: a sandbox told attached (or a service told created) that lacks its record, link,
//   address, name, DNS answer, published port or load-balancer backend;
// - duplicated: one sandbox or service recorded twice, one address held by two records, or
//   held by a record without IPAM's allocation (IPAM could hand it out again);
// - leaked: anything of a sandbox or service told detached or removed, an allocation no record
//   holds, a cnmd link, nft element, netns mount or process that no record knows.
// A request cut by the kill (no answer) may have been applied or not: what the restart shows is
// taken as its outcome, provided it is whole (all of it) or absent (none of it).
import { readFile, stat } from 'node:fs/promises';
import { NftablesDataPlane, type VirtualService } from '@cnmd/lb';
import { TestHost } from '../daemon-harness.js';
import { Netns, run } from '../netns.js';
import { apiCall } from './api-call.js';
import { addresses4, linkNames, processTree, readState, type StateView } from './census.js';
import { SandboxDns } from './dns-query.js';

export interface CrashOptions {
  /** How many times the daemon is killed (a kill during a restart's reconcile counts too). */
  kills: number;
  /** Concurrent clients (8), each with its own sandboxes and services. */
  clients?: number;
  sandboxesPerClient?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface CrashResult {
  kills: number;
  lost: number;
  duplicated: number;
  leaked: number;
  /** Requests the clients made, answered, and cut by a kill. */
  requests: number;
  cut: number;
  /** Answers that were an error other than the ones a client expects (kept for the report). */
  unexpected: string[];
  problems: string[];
}

type Told = 'attached' | 'detached' | 'unknown';

interface Sb {
  ns: Netns;
  client: number;
  net: number;
  name: string;
  hostPort: number;
  state: Told;
  ip?: string;
  service?: string;
  publish?: boolean;
}

interface Svc {
  name: string;
  client: number;
  net: number;
  state: 'present' | 'absent' | 'unknown';
  vip?: string;
}

const NETS = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (n: number) => Math.floor(Math.random() * n);
const netName = (n: number) => `rel${n}`;

export async function runCrashes(o: CrashOptions): Promise<CrashResult> {
  const clients = o.clients ?? 8;
  const per = o.sandboxesPerClient ?? 4;
  const log = o.log ?? (() => {});
  const result: CrashResult = {
    kills: 0,
    lost: 0,
    duplicated: 0,
    leaked: 0,
    requests: 0,
    cut: 0,
    unexpected: [],
    problems: [],
  };
  const made: Netns[] = [];
  const host = await TestHost.start();
  try {
    for (let n = 0; n < NETS; n++) await host.ok('network', 'create', netName(n), '--subnet', `10.98.${n}.0/24`);
    // A sandbox per network that stays attached: it asks for the names that must not answer.
    const watchers: Netns[] = [];
    for (let n = 0; n < NETS; n++) {
      const ns = await Netns.create('cnmd-rel');
      made.push(ns);
      watchers.push(ns);
      await host.ok('attach', ns.name, '--network', netName(n), '--name', `watch${n}`);
    }
    const sbs: Sb[] = [];
    const svcs: Svc[] = [];
    for (let c = 0; c < clients; c++) {
      for (let j = 0; j < per; j++) {
        const ns = await Netns.create('cnmd-rel');
        made.push(ns);
        sbs.push({
          ns,
          client: c,
          net: c % NETS,
          name: `r${c}x${j}`,
          hostPort: 20000 + c * per + j,
          state: 'detached',
        });
      }
      for (let k = 0; k < 2; k++) svcs.push({ name: `s${c}v${k}`, client: c, net: c % NETS, state: 'absent' });
    }
    const ctx: Ctx = { host, sbs, svcs, watchers, result, running: false, seen: new Set() };

    for (let round = 1; result.kills < o.kills; round++) {
      ctx.running = true;
      const loops = Array.from({ length: clients }, (_, c) => clientLoop(ctx, c));
      await sleep(100 + rand(1400));
      const t0 = Date.now();
      const before = await processTree(host.pid!);
      await host.kill9();
      result.kills++;
      ctx.running = false;
      await Promise.all(loops);
      await gone(
        before.map((p) => p.pid),
        result,
        `round ${round}: after the kill`,
      );
      // Now and then a second kill while the restart reconciles what the first left.
      if (round % 5 === 0 && result.kills < o.kills) {
        const starting = host.startDaemon().catch(() => {});
        await sleep(rand(600));
        const pids = host.pid ? (await processTree(host.pid)).map((p) => p.pid) : [];
        await host.kill9();
        await starting;
        result.kills++;
        await gone(pids, result, `round ${round}: after the kill during the restart`);
      }
      const t1 = Date.now();
      await host.startDaemon();
      const t2 = Date.now();
      await check(ctx, `round ${round}`, false);
      if (process.env.CNMD_RELIABILITY_DEBUG)
        log(`crashes: round ${round}: kill ${t1 - t0} ms, start ${t2 - t1} ms, check ${Date.now() - t2} ms`);
      log(
        `crashes: round ${round}, ${result.kills} kill(s): ${ctx.sbs.filter((s) => s.state === 'attached').length} attached, ` +
          `${ctx.svcs.filter((s) => s.state === 'present').length} services; lost ${result.lost}, duplicated ${result.duplicated}, leaked ${result.leaked}`,
      );
    }
    // At the end, once every drain is over: the load balancers hold exactly the tasks.
    await sleep(11_000);
    await check(ctx, 'the end', true);
    return result;
  } catch (err) {
    throw new Error(`${(err as Error).message}\nthe daemon's log:\n${host.log.split('\n').slice(-40).join('\n')}`, {
      cause: err,
    });
  } finally {
    await host.close();
    for (const ns of made) await ns.remove().catch(() => {});
  }
}

interface Ctx {
  host: TestHost;
  sbs: Sb[];
  svcs: Svc[];
  watchers: Netns[];
  result: CrashResult;
  running: boolean;
  /** The faults found so far. */
  seen: Set<string>;
}

/** Processes of the killed daemon (its nft worker, nft session) must not outlive it. */
async function gone(pids: number[], result: CrashResult, when: string): Promise<void> {
  let left: number[] = [];
  for (let i = 0; i < 50; i++) {
    left = [];
    for (const p of pids) if (await stat(`/proc/${p}`).catch(() => undefined)) left.push(p);
    if (left.length === 0) return;
    await sleep(100);
  }
  for (const p of left) {
    const cmd = (await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
    result.leaked++;
    result.problems.push(`${when}: process ${p} (${cmd}) outlived its daemon`);
  }
}

async function clientLoop(ctx: Ctx, c: number): Promise<void> {
  const { host, result } = ctx;
  const mine = ctx.sbs.filter((s) => s.client === c);
  const services = ctx.svcs.filter((s) => s.client === c);
  while (ctx.running) {
    const choice = rand(10);
    const call = async (method: string, path: string, body?: unknown) => {
      result.requests++;
      const r = await apiCall(host.socket, method, path, body);
      if (r.error && r.sent) result.cut++;
      return r;
    };
    if (choice < 4) {
      const sb = pickOf(mine.filter((s) => s.state === 'detached'));
      if (!sb) continue;
      const svc = rand(2) ? pickOf(services.filter((s) => s.state === 'present')) : undefined;
      const publish = rand(2) === 0;
      const body = {
        sandbox: sb.ns.name,
        network: netName(sb.net),
        name: sb.name,
        ...(svc ? { service: svc.name } : {}),
        ...(publish ? { publish: [`${sb.hostPort}:80/tcp`] } : {}),
      };
      const r = await call('POST', '/v1/endpoints', body);
      if (!r.sent) continue;
      if (r.status === 201) {
        Object.assign(sb, { state: 'attached', ip: (r.body as { ip: string }).ip, service: svc?.name, publish });
      } else if (r.error) {
        sb.state = 'unknown';
      } else {
        result.unexpected.push(`attach ${sb.name}: ${r.status} ${JSON.stringify(r.body)}`);
      }
    } else if (choice < 7) {
      const sb = pickOf(mine.filter((s) => s.state === 'attached'));
      if (!sb) continue;
      const r = await call('DELETE', `/v1/endpoints?sandbox=${encodeURIComponent(sb.ns.name)}`);
      if (!r.sent) continue;
      if (r.status === 200) Object.assign(sb, { state: 'detached', ip: undefined, service: undefined });
      else if (r.error) sb.state = 'unknown';
      else result.unexpected.push(`detach ${sb.name}: ${r.status} ${JSON.stringify(r.body)}`);
    } else if (choice < 9) {
      const svc = pickOf(services.filter((s) => s.state === 'absent'));
      if (!svc) continue;
      const r = await call('POST', '/v1/services', { name: svc.name, network: netName(svc.net), ports: ['80/tcp'] });
      if (!r.sent) continue;
      if (r.status === 201) Object.assign(svc, { state: 'present', vip: (r.body as { vip: string }).vip });
      else if (r.error) svc.state = 'unknown';
      else result.unexpected.push(`service create ${svc.name}: ${r.status} ${JSON.stringify(r.body)}`);
    } else {
      // Only a service without tasks: one with tasks is refused (SIDECAR_SERVICE_IN_USE).
      const svc = pickOf(
        services.filter(
          (s) => s.state === 'present' && !mine.some((t) => t.service === s.name && t.state !== 'detached'),
        ),
      );
      if (!svc) continue;
      const r = await call('DELETE', `/v1/services/${svc.name}?network=${netName(svc.net)}`);
      if (!r.sent) continue;
      if (r.status === 204) Object.assign(svc, { state: 'absent', vip: undefined });
      else if (r.error) svc.state = 'unknown';
      else result.unexpected.push(`service rm ${svc.name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }
}

function pickOf<T>(xs: T[]): T | undefined {
  return xs.length ? xs[rand(xs.length)] : undefined;
}

async function check(ctx: Ctx, when: string, final: boolean): Promise<void> {
  const { host, result } = ctx;
  // Each fault counts once: one that stays is seen again at every later check.
  const problem = (kind: 'lost' | 'duplicated' | 'leaked', what: string) => {
    if (ctx.seen.has(`${kind}: ${what}`)) return;
    ctx.seen.add(`${kind}: ${what}`);
    result[kind]++;
    result.problems.push(`${when}: ${kind}: ${what}`);
  };
  const problemsBefore = result.problems.length;
  const state = await readState(host);
  const epsApi =
    ((await apiCall(host.socket, 'GET', '/v1/endpoints')).body as unknown as {
      sandbox: string;
      ip: string;
      status: string;
      name?: string;
    }[]) ?? [];
  const netById = new Map(state.networks.map((n) => [n.id, n]));
  const netId = (n: number) => state.networks.find((r) => r.spec.name === netName(n))?.id;

  for (const r of state.endpoints) if (r.state !== 'ready') problem('leaked', `endpoint ${r.name} left ${r.state}`);
  for (const r of state.networks) if (r.state !== 'ready') problem('leaked', `network ${r.spec.name} left ${r.state}`);
  const known = new Set([...ctx.sbs.map((s) => s.ns.path), ...ctx.watchers.map((w) => w.path)]);
  for (const r of state.endpoints) {
    if (!r.lb && !known.has(r.sandbox)) problem('leaked', `an endpoint of no client's sandbox: ${r.sandbox}`);
  }

  // Sandboxes: records, links, addresses, the resolver's NAT rule, resolv.conf, DNS.
  const dnsOf = new Map<string, Promise<SandboxDns>>();
  const dns = (ns: Netns) => {
    let d = dnsOf.get(ns.path);
    if (!d) dnsOf.set(ns.path, (d = SandboxDns.open(ns.path)));
    return d;
  };
  try {
    const oneSandbox = async (sb: Sb) => {
      const recs = state.endpoints.filter((e) => e.sandbox === sb.ns.path);
      if (recs.length > 1) problem('duplicated', `${sb.name} has ${recs.length} endpoint records`);
      const rec = recs[0];
      if (sb.state === 'unknown') {
        // The outcome of a request cut by the kill: whatever the restart shows, if it is whole.
        sb.state = rec ? 'attached' : 'detached';
        sb.ip = rec?.ip;
        sb.service = rec?.service;
        sb.publish = (rec?.publish.length ?? 0) > 0;
      }
      const api = epsApi.filter((e) => e.sandbox === sb.ns.path);
      // One process for the three listings: `ip -o link`, `ip -o -4 addr`, the nft ruleset.
      const [linkOut = '', addrOut = '', nft = ''] = (
        await sb.ns.exec('sh', ['-c', 'ip -o link; echo @@; ip -o -4 addr; echo @@; nft list ruleset'])
      ).split('@@\n');
      const links = await linkNames(async () => linkOut);
      const addrs = await addresses4(async () => addrOut);
      const resolv = await stat(`/etc/netns/${sb.ns.name}/resolv.conf`).catch(() => undefined);
      if (sb.state === 'attached') {
        if (!rec || rec.ip !== sb.ip) problem('lost', `${sb.name} told attached at ${sb.ip}: record ${rec?.ip}`);
        if (api.length !== 1 || api[0]!.status !== 'ready')
          problem('lost', `${sb.name}: the API shows ${JSON.stringify(api)}`);
        if (links.join() !== 'eth0') problem('lost', `${sb.name}: links ${links.join()}`);
        if (addrs.join() !== `eth0 ${sb.ip}/24`) problem('lost', `${sb.name}: addresses ${addrs.join()}`);
        if (!nft.includes('table ip cnmd-dns')) problem('lost', `${sb.name}: no resolver NAT rule`);
        if (!resolv) problem('lost', `${sb.name}: no /etc/netns resolv.conf`);
        if (rec && rec.service !== sb.service) problem('lost', `${sb.name}: service ${rec.service} not ${sb.service}`);
        const a = await (await dns(sb.ns)).ask(sb.name, { tries: 5, timeoutMs: 1000 });
        if (a?.rcode !== 0 || a.addresses.join() !== sb.ip) {
          problem('lost', `${sb.name}: its own resolver answers ${JSON.stringify(a)} for its name`);
        }
      } else {
        if (rec) problem('leaked', `${sb.name} told detached still has a record (${rec.ip})`);
        if (api.length > 0) problem('leaked', `${sb.name} told detached: the API shows it`);
        if (links.length > 0) problem('leaked', `${sb.name} told detached: links ${links.join()}`);
        if (addrs.length > 0) problem('leaked', `${sb.name} told detached: addresses ${addrs.join()}`);
        if (nft.includes('table')) problem('leaked', `${sb.name} told detached: nft ${nft.trim()}`);
        if (resolv) problem('leaked', `${sb.name} told detached: /etc/netns resolv.conf left`);
        // Not in the table: forwarded to the harness's upstream, which refuses (SERVFAIL).
        const a = await (await dns(ctx.watchers[sb.net]!)).ask(sb.name, { tries: 5, timeoutMs: 1000 });
        if (!a) problem('lost', `watch${sb.net}'s resolver did not answer for ${sb.name}`);
        else if (a.addresses.length > 0) problem('leaked', `${sb.name} told detached: its name answers ${a.addresses}`);
      }
    };
    for (let i = 0; i < ctx.sbs.length; i += 8) await Promise.all(ctx.sbs.slice(i, i + 8).map(oneSandbox));
    for (const [n, w] of ctx.watchers.entries()) {
      const a = await (await dns(w)).ask(`watch${n}`);
      if (a?.rcode !== 0 || a.addresses.length !== 1) problem('lost', `watch${n} answers ${JSON.stringify(a)}`);
    }

    // Services: records, names, VIPs, tasks.
    for (const svc of ctx.svcs) {
      const recs = state.services.filter((s) => s.spec.name === svc.name && s.network === netId(svc.net));
      if (recs.length > 1) problem('duplicated', `service ${svc.name} has ${recs.length} records`);
      const rec = recs[0];
      if (svc.state === 'unknown') {
        svc.state = rec ? 'present' : 'absent';
        svc.vip = rec?.vip;
      }
      const w = await dns(ctx.watchers[svc.net]!);
      const a = await w.ask(svc.name);
      const tasks = ctx.sbs
        .filter((s) => s.state === 'attached' && s.service === svc.name)
        .map((s) => s.ip!)
        .sort();
      if (svc.state === 'present') {
        if (!rec || rec.vip !== svc.vip) problem('lost', `service ${svc.name} told at ${svc.vip}: record ${rec?.vip}`);
        if (a?.rcode !== 0 || a.addresses.join() !== svc.vip) {
          problem('lost', `service ${svc.name}: its name answers ${JSON.stringify(a)}`);
        }
        const t = await w.ask(`tasks.${svc.name}`);
        if (t?.rcode !== 0 || t.addresses.join() !== tasks.join()) {
          problem(
            (t?.addresses.length ?? 0) > tasks.length ? 'leaked' : 'lost',
            `tasks.${svc.name} answers ${JSON.stringify(t)}, not ${tasks.join()}`,
          );
        }
      } else {
        if (rec) problem('leaked', `service ${svc.name} told removed still has a record`);
        if (!a) problem('lost', `watch${svc.net}'s resolver did not answer for ${svc.name}`);
        else if (a.addresses.length > 0) problem('leaked', `service ${svc.name} told removed answers ${a.addresses}`);
        if (tasks.length > 0) problem('lost', `service ${svc.name} absent with tasks ${tasks.join()}`);
      }
    }
  } finally {
    for (const d of dnsOf.values()) (await d.catch(() => undefined))?.close();
  }

  await checkAddresses(state, problem);
  await checkHost(ctx, state, problem);
  await checkLoadBalancers(ctx, state, netById, final, problem);
  if (result.problems.length > problemsBefore) {
    // For the why: what the API says of the endpoints that failed, and what the daemon said.
    const failed = epsApi.filter((e) => e.status !== 'ready').map((e) => `${e.name ?? e.sandbox} ${e.status}`);
    const said = host.log.split('\n').filter((l) => /reconcile|error|warn/.test(l));
    result.problems.push(`${when}: (not a fault) endpoints not ready per the API: ${failed.join(', ') || 'none'}`);
    result.problems.push(`${when}: (not a fault) the daemon said: ${said.slice(-10).join(' | ') || 'nothing amiss'}`);
  }
}

/** Every allocation held by exactly one record, every record's address allocated. */
async function checkAddresses(
  state: StateView,
  problem: (k: 'lost' | 'duplicated' | 'leaked', what: string) => void,
): Promise<void> {
  for (const net of state.networks) {
    const holders = new Map<string, string[]>();
    const hold = (a: string | undefined, who: string) => {
      if (a) holders.set(a, [...(holders.get(a) ?? []), who]);
    };
    for (const e of state.endpoints) if (e.network === net.id) hold(e.ip, `endpoint ${e.name ?? e.id.slice(0, 8)}`);
    for (const s of state.services) if (s.network === net.id) hold(s.vip, `service ${s.spec.name}`);
    const allocated = new Set(state.addresses.get(net.pool4) ?? []);
    for (const [a, who] of holders) {
      if (who.length > 1) problem('duplicated', `${a} held by ${who.join(', ')}`);
      if (!allocated.has(a)) problem('duplicated', `${a} held by ${who.join(', ')} but not allocated`);
    }
    for (const a of allocated) if (!holders.has(a)) problem('leaked', `${a} allocated, held by no record`);
  }
}

/** The host namespace: cnmd links and nft elements that records know, nothing else. */
async function checkHost(
  ctx: Ctx,
  state: StateView,
  problem: (k: 'lost' | 'duplicated' | 'leaked', what: string) => void,
): Promise<void> {
  const { host } = ctx;
  const knownLinks = new Set([...state.networks.map((n) => n.device), ...state.endpoints.map((e) => e.hostIf)]);
  const links = await linkNames((c, a) => host.ns.exec(c, a));
  for (const l of links) if (/^(cnmd-|vcn)/.test(l) && !knownLinks.has(l)) problem('leaked', `host link ${l}`);
  for (const k of knownLinks) if (!links.includes(k)) problem('lost', `host link ${k} of a record is missing`);
  const ruleset = await host.ns.exec('nft', ['list', 'ruleset']);
  // Published ports: the ports4any map holds exactly the attached sandboxes' ports.
  const published = new Set([...ruleset.matchAll(/tcp \. (\d+) : ([\d.]+) \. 80/g)].map((m) => `${m[1]} ${m[2]}`));
  const want = new Set(ctx.sbs.filter((s) => s.state === 'attached' && s.publish).map((s) => `${s.hostPort} ${s.ip}`));
  for (const p of published) if (!want.has(p)) problem('leaked', `published port ${p} in nft`);
  for (const p of want) if (!published.has(p)) problem('lost', `published port ${p} missing from nft`);
  const bridges = new Set([...ruleset.matchAll(/"(cnmd-[0-9a-f]{10})"/g)].map((m) => m[1]!));
  for (const b of bridges) if (!state.networks.some((n) => n.device === b)) problem('leaked', `nft names ${b}`);
  // The load-balancer sandboxes: one mount each, for networks that exist.
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '');
  for (const n of state.networks) {
    const path = `/run/netns/cnmd-lb-${n.id.slice(0, 10)}`;
    const count = mounts.filter((m) => m === path).length;
    if (count > 1) problem('leaked', `${path} mounted ${count} times`);
  }
}

/** The nftables data plane of each network's LB sandbox holds exactly the services and their tasks. */
async function checkLoadBalancers(
  ctx: Ctx,
  state: StateView,
  netById: Map<string, StateView['networks'][number]>,
  final: boolean,
  problem: (k: 'lost' | 'duplicated' | 'leaked', what: string) => void,
): Promise<void> {
  for (const net of netById.values()) {
    const lb = `cnmd-lb-${net.id.slice(0, 10)}`;
    const svcs = state.services.filter((s) => s.network === net.id && s.vip);
    let held: VirtualService[] = [];
    if (await stat(`/run/netns/${lb}`).catch(() => undefined)) {
      const dp = new NftablesDataPlane({
        netns: lb,
        // Reads only: no input (netns.run would write it to an nft that may have exited).
        exec: (cmd, args) => run('ip', ['netns', 'exec', lb, cmd, ...args]),
      });
      held = await dp.read();
      await dp.close();
      // The VIPs as /32s on the sandbox's eth0: exactly the services'.
      const vips = (await run('ip', ['netns', 'exec', lb, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']))
        .split('\n')
        .map((l) => /inet ([\d.]+)\/32/.exec(l)?.[1])
        .filter((v): v is string => !!v);
      for (const v of vips) if (!svcs.some((s) => s.vip === v)) problem('leaked', `VIP ${v} left on ${lb}`);
      for (const s of svcs) if (!vips.includes(s.vip!)) problem('lost', `VIP ${s.vip} of ${s.spec.name} not on ${lb}`);
    }
    for (const vs of held) {
      const rec = svcs.find((s) => s.mark === vs.mark);
      if (!rec) {
        problem('leaked', `${lb}: nft service mark ${vs.mark} (${vs.vip}) of no service`);
        continue;
      }
      const tasks = ctx.sbs
        .filter((s) => s.state === 'attached' && s.service === rec.spec.name)
        .map((s) => s.ip!)
        .sort();
      const active = vs.backends
        .filter((b) => b.weight > 0)
        .map((b) => b.address)
        .sort();
      const draining = vs.backends.filter((b) => b.weight === 0).map((b) => b.address);
      if (vs.vip !== rec.vip) problem('lost', `${lb}: mark ${vs.mark} balances ${vs.vip}, not ${rec.vip}`);
      if (active.join() !== tasks.join()) {
        problem(
          active.some((a) => !tasks.includes(a)) ? 'leaked' : 'lost',
          `${lb}: ${rec.spec.name} balances over ${active.join()}, its tasks are ${tasks.join()}`,
        );
      }
      for (const d of draining) {
        if (final || tasks.includes(d)) problem('leaked', `${lb}: ${rec.spec.name} still drains ${d}`);
      }
    }
    for (const s of svcs) {
      if (!held.some((vs) => vs.mark === s.mark)) problem('lost', `${lb}: no nft service for ${s.spec.name}`);
    }
  }
}
