// Part 3 of the reliability campaign (#16): attach/detach cycles over a pool of sandboxes, half
// of them attached at any time (a cycle detaches the longest attached and attaches the longest
// detached; half of them tasks of a vip service, a third with a published port).
// Every `sampleEvery` cycles the daemon's fds and
// processes, the host's links, addresses and nft rules, the load balancer's nft elements, IPAM's
// allocations and the records are counted: they must stay what they were at the start (a leak
// of one per cycle shows at once). The RSS (the daemon's and its children's) is sampled ten
// times as often, after a first round of cycles, and may grow 10% at most (census.ts rssGrowthPct).
import { TestHost } from '../daemon-harness.js';
import { Netns, run } from '../netns.js';
import { apiCall } from './api-call.js';
import { addresses4, linkNames, processTree, readState, rssGrowthPct, totals } from './census.js';

export interface SoakOptions {
  cycles: number;
  sandboxes?: number;
  sampleEvery?: number;
  log?: (line: string) => void;
}

export interface SoakSample {
  cycle: number;
  rssKiB: number;
  counts: Record<string, number>;
}

export interface SoakResult {
  cycles: number;
  /** For each count, how far it rose above its first sample at worst, summed. */
  leaks: number;
  /** From RSS samples taken ten times per `sampleEvery` cycles after the first (rssGrowthPct). */
  rssGrowthPct: number;
  rssKiB: number[];
  samples: SoakSample[];
  problems: string[];
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const n = o.sandboxes ?? 200;
  const every = o.sampleEvery ?? 1000;
  const log = o.log ?? (() => {});
  const res: SoakResult = { cycles: 0, leaks: 0, rssGrowthPct: 0, rssKiB: [], samples: [], problems: [] };
  const host = await TestHost.start();
  const sbs: Netns[] = [];
  try {
    await host.ok('network', 'create', 'soak', '--subnet', '10.101.0.0/23');
    await host.ok('service', 'create', 'soaksvc', '--network', 'soak', '--port', '80/tcp');
    const net = (await host.json<{ id: string }>('network', 'inspect', 'soak')).id;
    const lb = `cnmd-lb-${net.slice(0, 10)}`;
    for (let i = 0; i < n; i++) sbs.push(await Netns.create('cnmd-rel'));
    const half = Math.floor(n / 2);
    // A cycle detaches sandbox i and attaches i + half (mod n): the two are alike (a task or not,
    // a published port or not), so that every count is the same at every sample.
    const attach = async (i: number) => {
      const body = {
        sandbox: sbs[i]!.name,
        network: 'soak',
        name: `k${i}`,
        ...((i % half) % 2 === 0 ? { service: 'soaksvc' } : {}),
        ...((i % half) % 3 === 0 ? { publish: [`${30000 + i}:80/tcp`] } : {}),
      };
      const r = await apiCall(host.socket, 'POST', '/v1/endpoints', body);
      if (r.status !== 201) throw new Error(`attach k${i}: ${r.status ?? r.error} ${JSON.stringify(r.body)}`);
    };
    const detach = async (i: number) => {
      const r = await apiCall(host.socket, 'DELETE', `/v1/endpoints?sandbox=${sbs[i]!.name}`);
      if (r.status !== 200) throw new Error(`detach k${i}: ${r.status ?? r.error} ${JSON.stringify(r.body)}`);
    };
    const attached: number[] = [];
    const detached: number[] = [];
    for (let i = 0; i < n; i++) {
      if (i < half) {
        await attach(i);
        attached.push(i);
      } else detached.push(i);
    }

    const sample = async (cycle: number): Promise<SoakSample> => {
      const procs = await processTree(host.pid!);
      const tree = totals(procs);
      if (process.env.CNMD_RELIABILITY_DEBUG) log(procs.map((p) => `${p.pid} ${p.rssKiB} KiB ${p.cmd}`).join('; '));
      const state = await readState(host);
      const hostNft = nftCounts(await host.ns.exec('nft', ['-j', 'list', 'ruleset']));
      const lbNft = nftCounts(await run('ip', ['netns', 'exec', lb, 'nft', '-j', 'list', 'ruleset']));
      const counts = {
        fds: tree.fds,
        processes: tree.processes,
        hostLinks: (await linkNames((c, a) => host.ns.exec(c, a))).length,
        hostAddresses: (await addresses4((c, a) => host.ns.exec(c, a))).length,
        hostNftObjects: hostNft.objects,
        hostNftElements: hostNft.elements,
        lbNftObjects: lbNft.objects,
        lbNftElements: lbNft.elements,
        allocations: [...state.addresses.values()].reduce((s, a) => s + a.length, 0),
        records: state.entries.size,
      };
      return { cycle, rssKiB: tree.rssKiB, counts };
    };

    res.samples.push(await sample(0));
    log(`soak: start ${JSON.stringify(res.samples[0])}`);
    for (let cycle = 1; cycle <= o.cycles; cycle++) {
      const out = attached.shift()!;
      await detach(out);
      detached.push(out);
      const inn = detached.shift()!;
      await attach(inn);
      attached.push(inn);
      res.cycles = cycle;
      // The RSS more often than the counts (it is cheap): the first round of cycles warms up.
      if (cycle > every && cycle % Math.max(1, Math.floor(every / 10)) === 0) {
        res.rssKiB.push(totals(await processTree(host.pid!)).rssKiB);
      }
      if (cycle % every === 0 || cycle === o.cycles) {
        const s = await sample(cycle);
        res.samples.push(s);
        log(`soak: ${cycle} cycles: RSS ${(s.rssKiB / 1024).toFixed(1)} MiB ${JSON.stringify(s.counts)}`);
      }
    }
    const first = res.samples[0]!;
    for (const key of Object.keys(first.counts)) {
      const worst = Math.max(...res.samples.map((s) => s.counts[key]! - first.counts[key]!));
      if (worst > 0) {
        res.leaks += worst;
        res.problems.push(`${key}: ${res.samples.map((s) => s.counts[key]).join(' → ')}`);
      }
    }
    res.rssGrowthPct = rssGrowthPct(res.rssKiB);
    return res;
  } catch (err) {
    throw new Error(`${(err as Error).message}\nthe daemon's log:\n${host.log.split('\n').slice(-30).join('\n')}`, {
      cause: err,
    });
  } finally {
    await host.close();
    for (const ns of sbs) await ns.remove().catch(() => {});
  }
}

/**
 * Tables, chains, sets, maps and rules (`objects`), and set and map elements, of a ruleset
 * (`nft -j list ruleset`, libnftables-json(5)). A backend that drains (weight 0 in a weights
 * map, for the load balancer's 10 s) is not counted: whether one drains at a sample is timing.
 */
export function nftCounts(json: string): { objects: number; elements: number } {
  let objects = 0;
  let elements = 0;
  for (const item of (JSON.parse(json) as { nftables: Record<string, { name?: string; elem?: unknown[] }>[] })
    .nftables) {
    for (const [kind, v] of Object.entries(item)) {
      if (kind === 'metainfo') continue;
      objects++;
      const drained = (e: unknown) => Array.isArray(e) && e[1] === 0 && v.name?.startsWith('weights');
      elements += (v.elem ?? []).filter((e) => !drained(e)).length;
    }
  }
  return { objects, elements };
}
