// npm run bench -w @cnmd/e2e -- cluster: several hosts, one view (#12). Three simulated hosts
// (each a namespace with its own cnmd daemon) and a three-node NATS JetStream cluster
// (ClusterLab), one global network. Measured in one run:
// - name_visible: containers attached on host0 one after another through its API (node:http
//   over the unix socket); for each, from the start of the attach call to its name's first
//   answer from a sandbox on host1, asked by a poller inside that sandbox (DnsPoller: UDP to
//   127.0.0.11:53, one query in flight, at least 300 µs apart). Both ends read CLOCK_MONOTONIC
//   (process.hrtime.bigint()), checked to agree when the poller starts. p50/p99;
// - global_attach_per_s: every host attaching its own containers at once, a few in flight each,
//   attaches over the wall time of them all (and until every name answers on every host);
// - resync_10k_ms: 10,000 endpoint records of a synthetic host (its heartbeat kept fresh) put in
//   the bucket, host1 following them live; then every NATS server stopped and started again,
//   and host1's own "in step in X ms" after it reconnects, which holds the wait for the servers
//   to elect their JetStream leaders (shown apart: reconnect → /jsz names them all → in step);
//   then host1's connection cut (ss -K) with the servers healthy: the resync alone
//   (resync_10k_cut_ms); then the server host1 is on killed (what it led is elected anew);
// - duplicate_addresses: addresses held twice across the hosts' endpoints on the network.
// Run as root. Everything it made is removed at the end, also when it fails.
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterLab, UNDERLAY } from '../src/cluster-lab.js';
import type { TestHost } from '../src/daemon-harness.js';
import { DnsPoller } from '../src/dns-poller.js';
import type { Netns } from '../src/netns.js';
import { load, pct, pool, printHostLogs, sleep, until } from './util.js';

const VISIBLE = Number(process.env.CNMD_BENCH_CONTAINERS ?? 300);
const RECORDS = Number(process.env.CNMD_BENCH_RECORDS ?? 10_000);
const PER_HOST = Number(process.env.CNMD_BENCH_ATTACH ?? 100);
const IN_FLIGHT = 4;
const NET = 'bench';
// A /16: blocks of /26 for the hosts from its bottom; the synthetic host's records from
// 10.64.192.0 up (16,384 addresses), which no host's blocks reach in this run.
const SUBNET = '10.64.0.0/16';
const SYNTH = 'synth0';
const BATCH = 2000;

const ms = (ns: bigint) => Number(ns) / 1e6;
/** CLOCK_MONOTONIC in ms, the same in every process here (libuv's uv_hrtime). */
const mono = () => Number(process.hrtime.bigint() / 1000n) / 1000;

interface Attached {
  ip: string;
}

async function attach(host: TestHost, sandbox: Netns, name: string): Promise<Attached> {
  const r = await host.api<Attached & { code?: string; message?: string }>('POST', '/v1/endpoints', {
    sandbox: sandbox.name,
    network: NET,
    name,
  });
  if (r.status !== 201) throw new Error(`attach ${name}: ${r.status} ${r.body?.code} ${r.body?.message}`);
  return r.body;
}

// Inside the lab namespace (ClusterLab.natsRun): the synthetic host's heartbeat, rewritten every
// `every` ms on a connection of its own that reconnects for ever, while the flag file exists and
// the bench that started it lives.
const HEARTBEAT = `const [flag, host, every] = args; const fs = require('node:fs'); const parent = process.ppid;
const hc = await connect({ servers, name: host + '-beat', maxReconnectAttempts: -1, reconnectTimeWait: 250 });
const kv = await new Kvm(jetstream(hc)).open('cnmd_hosts');
const started = Date.now(); let beats = 0, failed = 0;
while (fs.existsSync(flag) && process.ppid === parent && Date.now() - started < 3600e3) {
  try { await kv.put(host, JSON.stringify({ v: 1, host, at: Date.now(), started })); beats++; } catch { failed++; }
  await new Promise((r) => setTimeout(r, +every));
}
await hc.close(); return { beats, failed };`;

// Inside the lab namespace: `count` endpoint records of the synthetic host from index `from`,
// 256 puts in flight; what the daemons write (sidecar/src/cluster/records.ts ClusterEndpoint).
const PUT_RECORDS = `const [network, host, from, count] = [args[0], args[1], +args[2], +args[3]];
const { createHash } = require('node:crypto');
const hex = (s) => createHash('sha256').update(s).digest('hex');
const kv = await new Kvm(jetstream(nc)).open('cnmd_endpoints');
let inFlight = [];
for (let i = from; i < from + count; i++) {
  const id = hex('cnmd-bench-ep-' + i);
  const ip = '10.64.' + (192 + (i >> 8)) + '.' + (i & 255);
  const rec = { v: 1, host, id, network, containerId: hex('cnmd-bench-c-' + i), name: 'syn-' + i, aliases: [], ip };
  inFlight.push(kv.put('host.' + host + '.' + id, JSON.stringify(rec)));
  if (inFlight.length === 256) { await Promise.all(inFlight); inFlight = []; }
}
await Promise.all(inFlight); return count;`;

// Inside host1's namespace, started as the servers come back: when the servers first let a
// client make a watch (an ordered consumer) of each bucket, on CLOCK_MONOTONIC in ms. A request
// made while a leader is missing gets no reply at all, so a new one starts every 200 ms without
// waiting for the last, each with the daemon's 2 s timeout: the first to succeed tells the time
// within 200 ms, and a slow reply on a loaded machine is not taken for a missing leader.
const FIRST_WATCH = `const mono = () => Number(process.hrtime.bigint() / 1000n) / 1000;
const kvm = new Kvm(jetstream(nc, { timeout: 2000 })); const end = mono() + 60000; const first = {};
await Promise.all(args.map((b) => new Promise((done) => {
  const attempt = () => kvm.open(b).then((kv) => kv.watch()).then((it) => { first[b] ??= mono(); it.stop(); done(); }, () => {});
  const timer = setInterval(() => { if (first[b] !== undefined || mono() > end) { clearInterval(timer); done(); } else attempt(); }, 200);
  attempt();
})));
return first;`;

// The daemons' buckets, as the servers list them (a resync watches every one).
const LIST_BUCKETS = `const out = []; for await (const s of new Kvm(jetstream(nc)).list()) out.push(s.bucket);
return out.filter((b) => b.startsWith('cnmd_')).sort();`;

const IN_STEP = /cluster: in step in (\d+) ms: (\d+) network\(s\), (\d+) endpoint\(s\)/;

/**
 * Makes `host` reconnect by `how` and waits for its first "in step" line holding `endpoints`
 * or more records; with a timeline of host's cluster lines and `how`'s marks (ms from the start,
 * the log read every 5 ms; a mark may give its own time, from mono()).
 */
async function reconnect(
  host: TestHost,
  endpoints: number,
  how: (t: { mark: (what: string, at?: number) => void }) => Promise<void>,
): Promise<{ inStep: { ms: number; endpoints: number }; timeline: string; at: (what: RegExp) => number }> {
  const t0 = mono();
  const events: { t: number; what: string }[] = [];
  const mark = (what: string, at = mono()) => events.push({ t: at - t0, what });
  let read = host.log.length;
  let found: { ms: number; endpoints: number } | undefined;
  const follow = setInterval(() => {
    const text = host.log.slice(read, host.log.lastIndexOf('\n') + 1);
    read += text.length;
    for (const line of text.split('\n').filter((l) => l.includes('cluster:'))) {
      mark(`host1: ${line.replace(/^cnmd: /, '')}`);
      const m = IN_STEP.exec(line);
      if (m && Number(m[3]) >= endpoints) found ??= { ms: Number(m[1]), endpoints: Number(m[3]) };
    }
  }, 5);
  try {
    await how({ mark });
    await until('host1 in step after the reconnect', () => found !== undefined, 90_000);
  } finally {
    clearInterval(follow);
  }
  events.sort((x, y) => x.t - y.t);
  return {
    inStep: found!,
    timeline: events.map((e) => `  +${Math.round(e.t)} ms ${e.what}`).join('\n'),
    at: (what) => events.find((e) => what.test(e.what))?.t ?? Number.NaN,
  };
}

/** Marks when the servers first let a client in host1's namespace watch each bucket (FIRST_WATCH). */
async function firstWatches(
  lab: ClusterLab,
  buckets: string[],
  mark: (what: string, at?: number) => void,
): Promise<void> {
  const first = await lab.natsRun<Record<string, number>>(1, FIRST_WATCH, ...buckets);
  for (const [bucket, at] of Object.entries(first)) mark(`the servers let a client make a watch of ${bucket}`, at);
}

/** What NATS server i leads now: the meta group, streams (from its /jsz, in the lab namespace). */
async function leads(lab: ClusterLab, i: number): Promise<string[]> {
  const url = `${lab.nats.monitorUrls[i]}/jsz?accounts=true&streams=true`;
  const out = await lab.ns.exec(process.execPath, [
    '-e',
    `fetch(process.argv[1]).then((r) => r.json()).then((j) => {
       const me = process.argv[2]; const led = j.meta_cluster?.leader === me ? ['the meta group'] : [];
       for (const a of j.account_details ?? []) for (const s of a.stream_detail ?? []) if (s.cluster?.leader === me) led.push(s.name);
       console.log(JSON.stringify(led)); })`,
    url,
    lab.nats.name(i),
  ]);
  return JSON.parse(out) as string[];
}

export async function run(): Promise<void> {
  const loads: Record<string, string> = { start: load() };
  console.log(`load average (1/5/15 min) at the start: ${loads.start}`);
  const flag = join(tmpdir(), `cnmd-bench-beat-${randomBytes(4).toString('hex')}`);
  const pollers: DnsPoller[] = [];
  let lab: ClusterLab | undefined;
  let heartbeat: Promise<unknown> | undefined;
  try {
    lab = await ClusterLab.start({ hosts: 3, nats: 3 });
    const hosts = lab.hosts;
    console.log(
      `lab: namespaces ${[lab.ns, ...hosts.map((h) => h.ns)].map((n) => n.name).join(', ')}; ` +
        `NATS pids ${Array.from({ length: lab.nats.size }, (_, i) => lab!.nats.pid(i)).join(', ')}; ` +
        `daemon pids ${hosts.map((h) => h.pid).join(', ')}`,
    );
    const [a, b] = [hosts[0]!, hosts[1]!];
    await a.ok('network', 'create', NET, '--scope', 'global', '--subnet', SUBNET);
    const netId = (await a.json<{ id: string }>('network', 'inspect', NET)).id;
    await until('the network on every host', async () =>
      (await Promise.all(hosts.map((h) => h.cli('network', 'inspect', NET)))).every((r) => r.code === 0),
    );
    // A watcher container on each host, each with its poller.
    for (let i = 0; i < hosts.length; i++) {
      const sb = await lab.sandbox(i, `cnmd-bw${i}`);
      await attach(hosts[i]!, sb, `watch-${i}`);
      pollers.push(await DnsPoller.start(sb.path));
    }
    const watcher = pollers[1]!;
    await (await watcher.watch('watch-1', 10_000)).answered; // its own DNS answers

    // 1. name_visible: attach on host0, first answer on host1.
    const sbA = await sandboxes(lab, 0, VISIBLE, 'cnmd-bv');
    console.log(`${VISIBLE} sandboxes ready on host0; load ${load()}`);
    const visible: number[] = [];
    const attachMs: number[] = [];
    const afterReturn: number[] = [];
    const queries: number[] = [];
    for (let i = 0; i < VISIBLE; i++) {
      const name = `vis-${i}`;
      const { answered } = await watcher.watch(name, 10_000);
      const t0 = process.hrtime.bigint();
      const ep = await attach(a, sbA[i]!, name);
      const t1 = process.hrtime.bigint();
      const seen = await answered;
      if (seen.ip !== ep.ip) throw new Error(`${name} answered ${seen.ip} on host1, attached with ${ep.ip}`);
      visible.push(ms(seen.at - t0));
      attachMs.push(ms(t1 - t0));
      afterReturn.push(ms(seen.at - t1));
      queries.push(seen.queries);
    }
    loads.visible = load();
    console.log(
      `name visible (start of the attach on host0 → first answer from a sandbox on host1), ${VISIBLE} containers: ` +
        `p50 ${pct(visible, 50)} ms, p99 ${pct(visible, 99)} ms, max ${pct(visible, 100)} ms`,
    );
    console.log(
      `  of which the attach call on host0: p50 ${pct(attachMs, 50)} ms, p99 ${pct(attachMs, 99)} ms; ` +
        `from its return to the answer on host1: p50 ${pct(afterReturn, 50)} ms, p99 ${pct(afterReturn, 99)} ms ` +
        `(${pct(queries, 50)} queries per name, median); load ${loads.visible}`,
    );

    // 3. global_attach_per_s: every host at once, IN_FLIGHT attaches in flight each.
    const sbs = await Promise.all(hosts.map((_, i) => sandboxes(lab!, i, PER_HOST, `cnmd-bg${i}`)));
    console.log(`${PER_HOST} sandboxes ready on each host; load ${load()}`);
    const names = hosts.map((_, i) => Array.from({ length: PER_HOST }, (_, n) => `g${i}-${n}`));
    const each: number[] = [];
    const g0 = performance.now();
    await Promise.all(
      hosts.map((h, i) =>
        pool(sbs[i]!, IN_FLIGHT, async (sb, n) => {
          const t = performance.now();
          await attach(h, sb, names[i]![n]!);
          each.push(performance.now() - t);
        }),
      ),
    );
    const gWall = performance.now() - g0;
    const globalPerS = (hosts.length * PER_HOST * 1000) / gWall;
    // Then every name of the other hosts on each host's watcher.
    await Promise.all(
      pollers.map(async (p, i) => {
        const theirs = names.filter((_, j) => j !== i).flat();
        const watching = await Promise.all(theirs.map((n) => p.watch(n, 60_000)));
        await Promise.all(watching.map((w) => w.answered));
      }),
    );
    const converged = performance.now() - g0;
    loads.global = load();
    console.log(
      `global attach: ${hosts.length} hosts × ${PER_HOST} at once (${IN_FLIGHT} in flight each): ` +
        `${Math.round(gWall)} ms, ${globalPerS.toFixed(1)} attaches/s; each call p50 ${pct(each, 50)} ms, ` +
        `p99 ${pct(each, 99)} ms; every name answering on every host after ${Math.round(converged)} ms; load ${loads.global}`,
    );

    // 2. resync_10k_ms: the synthetic host's records, followed live; then host1 reconnects.
    await writeFile(flag, '');
    heartbeat = lab.natsRun('lab', HEARTBEAT, flag, SYNTH, '1000');
    heartbeat.catch((err) => console.error(`the synthetic heartbeat failed: ${err}`));
    await until('the synthetic host alive on host1', async () =>
      (await b.json<{ hosts: { host: string; alive: boolean }[] }>('cluster', 'status')).hosts.some(
        (h) => h.host === SYNTH && h.alive,
      ),
    );
    const lastName = `syn-${RECORDS - 1}`;
    const { answered: last } = await watcher.watch(lastName, 120_000);
    const p0 = process.hrtime.bigint();
    for (let from = 0; from < RECORDS; from += BATCH) {
      await lab.natsRun('lab', PUT_RECORDS, netId, SYNTH, String(from), String(Math.min(BATCH, RECORDS - from)));
    }
    const p1 = process.hrtime.bigint();
    const live = await last;
    console.log(
      `${RECORDS} records of ${SYNTH} put in ${Math.round(ms(p1 - p0))} ms (batches of ${BATCH}, ` +
        `256 puts in flight); the last one's name answering on host1 ${Math.round(ms(live.at - p0))} ms after the first put`,
    );

    const buckets = await lab.natsRun<string[]>('lab', LIST_BUCKETS);
    console.log(`the daemons' buckets: ${buckets.join(', ')}`);

    // a. Every NATS server stopped and started again (an outage of the whole cluster).
    const full = await reconnect(b, RECORDS, async (t) => {
      await lab!.nats.stopAll();
      await lab!.nats.startAll();
      t.mark('servers started');
      await firstWatches(lab!, buckets, t.mark);
      await lab!.nats.ready(60_000);
      t.mark('every server reports JetStream ready (/healthz, /jsz: a leader for each stream)');
    });
    // Where host1's "in step" went: its resync begins at the reconnect, and no watch can be made
    // until the servers have elected their meta and stream leaders.
    const split = (r: typeof full) => {
      const leaders = Math.max(...buckets.map((k) => r.at(new RegExp(`a watch of ${k}$`))));
      return {
        waiting: Math.round(leaders - r.at(/^host1: .*cluster: reconnected/)),
        after: Math.round(r.at(/^host1: .*cluster: in step/) - leaders),
      };
    };
    const fullSplit = split(full);
    console.log(
      `every NATS server stopped and started again; host1:\n${full.timeline}\n` +
        `  from host1's reconnect until the servers let a client watch every bucket: ${fullSplit.waiting} ms; ` +
        `from then until host1 is in step: ${fullSplit.after} ms`,
    );
    const probe = `syn-${Math.floor(RECORDS / 2)}`;
    await (await watcher.watch(probe, 10_000)).answered;

    // b. host1's connection cut (its TCP sockets to the servers aborted), the servers healthy:
    // the resync alone, no leader election in it.
    const cut = await reconnect(b, RECORDS, async (t) => {
      await b.ns.exec('ss', ['-K', 'dst', `${UNDERLAY}.1`]);
      t.mark('connection cut');
    });
    console.log(`host1's connection to NATS cut (ss -K), servers healthy; host1:\n${cut.timeline}`);

    // c. Only the server host1 is on killed: it reconnects to another at once; what the killed
    // server led (the meta group, streams) is elected anew first.
    const server = (await b.json<{ server?: string }>('cluster', 'status')).server ?? '';
    const on = lab.nats.urls.findIndex((u) => server !== '' && u.endsWith(`:${server.split(':').pop()}`));
    let killed: Awaited<ReturnType<typeof reconnect>> | undefined;
    let led: string[] = [];
    if (on >= 0) {
      led = await leads(lab, on);
      killed = await reconnect(b, RECORDS, async (t) => {
        await lab!.nats.kill(on);
        t.mark(`server n${on} killed`);
        await firstWatches(lab!, buckets, t.mark);
      });
      const killSplit = split(killed);
      console.log(
        `NATS server n${on} (host1's; it led: ${led.join(', ') || 'nothing'}) killed; host1:\n${killed.timeline}\n` +
          `  from host1's reconnect until the servers let a client watch every bucket: ${killSplit.waiting} ms; ` +
          `from then until host1 is in step: ${killSplit.after} ms`,
      );
      await lab.nats.restart(on);
      await lab.nats.ready(60_000);
    } else {
      console.log(`host1's server (${server}) is not one of the lab's: no kill measured`);
    }
    await (await watcher.watch(`syn-${Math.floor(RECORDS / 3)}`, 10_000)).answered;

    // d. What NATS and the client library take for the same snapshot, without cnmd: a bare
    // watch of the bucket from host1's namespace (consumer made, values until the last).
    const bare = await lab.natsRun<{ consumerMs: number; snapshotMs: number; entries: number }>(
      1,
      `const kv = await new Kvm(jetstream(nc)).open('cnmd_endpoints');
       const t0 = performance.now(); const it = await kv.watch(); const t1 = performance.now(); let entries = 0;
       for await (const e of it) { entries++; if (e.isUpdate) break; }
       const t2 = performance.now(); it.stop();
       return { consumerMs: t1 - t0, snapshotMs: t2 - t1, entries };`,
    );
    loads.resync = load();
    console.log(
      `resync of ${full.inStep.endpoints} endpoint records (host1's "in step"): ${full.inStep.ms} ms after every ` +
        `server restarted, ${cut.inStep.ms} ms after its connection was cut, ` +
        `${killed ? `${killed.inStep.ms} ms` : '-'} after its server was killed; a bare client watch of the bucket: ` +
        `consumer ${Math.round(bare.consumerMs)} ms, ${bare.entries} values in ${Math.round(bare.snapshotMs)} ms; ` +
        `${probe} answers on host1 after; load ${loads.resync}`,
    );

    // 4. duplicate_addresses: every endpoint on the global network, on every host.
    const eps = (await Promise.all(hosts.map((h) => h.json<{ network: string; ip: string }[]>('ps')))).flatMap((l) =>
      l.filter((e) => e.network === NET),
    );
    const counts = new Map<string, number>();
    for (const e of eps) counts.set(e.ip, (counts.get(e.ip) ?? 0) + 1);
    const duplicates = [...counts.values()].filter((c) => c > 1).length;
    console.log(`${eps.length} endpoints on ${NET} across the hosts, ${duplicates} address(es) held twice`);
    loads.end = load();
    console.log(`load average (1/5/15 min) at the end: ${loads.end}`);

    const result = {
      bench: 'cluster',
      name_visible_p50_ms: pct(visible, 50),
      name_visible_p99_ms: pct(visible, 99),
      resync_10k_ms: full.inStep.ms,
      global_attach_per_s: Math.round(globalPerS * 10) / 10,
      duplicate_addresses: duplicates,
      name_visible_max_ms: pct(visible, 100),
      attach_call_p50_ms: pct(attachMs, 50),
      attach_call_p99_ms: pct(attachMs, 99),
      resync_10k_cut_ms: cut.inStep.ms,
      resync_10k_waiting_for_leaders_ms: fullSplit.waiting,
      resync_10k_after_leaders_ms: fullSplit.after,
      resync_10k_kill_ms: killed?.inStep.ms ?? null,
      resync_endpoints: full.inStep.endpoints,
      bare_watch_10k_ms: Math.round(bare.consumerMs + bare.snapshotMs),
      global_converged_ms: Math.round(converged),
      containers: VISIBLE,
      records: RECORDS,
      global_attaches: hosts.length * PER_HOST,
      endpoints_on_network: eps.length,
      load_1m_start: Number(loads.start!.split(' ')[0]),
      load_1m_end: Number(loads.end!.split(' ')[0]),
    };
    console.log(JSON.stringify(result));
  } catch (err) {
    printHostLogs(lab);
    throw err;
  } finally {
    for (const p of pollers) p.close();
    await rm(flag, { force: true });
    // The heartbeat ends within a beat of its flag going (or with the servers).
    await Promise.race([heartbeat?.catch(() => {}), sleep(5000)]);
    await lab?.close();
  }
}

/** `n` sandboxes on host i, made a few at a time. */
async function sandboxes(lab: ClusterLab, i: number, n: number, prefix: string): Promise<Netns[]> {
  const out: Netns[] = new Array(n);
  await pool(
    Array.from({ length: n }, (_, k) => k),
    8,
    async (k) => {
      out[k] = await lab.sandbox(i, prefix);
    },
  );
  return out;
}
