// Part 2 of the reliability campaign (#16): DNS fuzz through the daemon. Random and mutated
// packets over UDP, and TCP streams cut, slow, pipelined, idle or with lengths that lie, at
// 127.0.0.11:53 inside a sandbox (through the daemon's NAT rule there), while correct queries
// (UDP and TCP) are checked every `checkEvery` packets. The daemon must stay up (a crash is
// counted and the daemon started again), answer right, and its RSS (with its children's) must
// not grow past 10% after a warm-up (census.ts rssGrowthPct). Seeded: a run can be repeated.
import type dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { bindUdpIn, withNetns } from '@cnmd/sidecar';
import { TestHost } from '../daemon-harness.js';
import { Netns } from '../netns.js';
import { alive, processTree, rssGrowthPct, totals } from './census.js';
import { aQuery, parseAnswer, SandboxDns } from './dns-query.js';
import { connectIn } from './netns-socket.js';

export interface FuzzOptions {
  /** UDP packets (1,000,000 in the bench). */
  packets: number;
  /** TCP streams (10,000 in the bench). */
  tcpStreams: number;
  /** A correctness check every this many packets (10,000). */
  checkEvery?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface FuzzResult {
  packets: number;
  tcpStreams: number;
  /** Times the daemon was found dead (and started again). */
  crashes: number;
  checks: number;
  failedChecks: number;
  /** UDP replies received for the fuzz packets. */
  replies: number;
  /** Packets the kernel dropped at the resolver's socket (its receive buffer was full). */
  drops: number;
  rssStartKiB: number;
  rssEndKiB: number;
  /** From RSS samples taken every quarter of `checkEvery` packets after the warm-up (census.ts rssGrowthPct). */
  rssGrowthPct: number;
  rssKiB: number[];
  fdsStart: number;
  fdsEnd: number;
  problems: string[];
}

/** mulberry32: a small seeded generator. */
export function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The table's names, near misses, names outside it (forwarded to the harness's upstream, which
// refuses: nothing leaves the machine), reverse names.
const NAMES = [
  'target',
  'TARGET',
  'alias1',
  'web',
  'tasks.web',
  'target.fz',
  '_http._tcp.web',
  '2.0.99.10.in-addr.arpa',
  'nothere',
  'x.invalid',
  '',
];
// A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT, IXFR, AXFR, ANY, CAA, 0 and 65535.
const TYPES = [1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 251, 252, 255, 257, 0, 65535];

/** A query (RFC 1035 4.1) with any type, class and flags, optionally an OPT record (RFC 6891). */
function query(r: () => number): Buffer {
  const int = (n: number) => Math.floor(r() * n);
  const name =
    r() < 0.1 ? Array.from({ length: 1 + int(6) }, () => 'a'.repeat(1 + int(63))).join('.') : NAMES[int(NAMES.length)]!;
  const labels = name
    .split('.')
    .filter(Boolean)
    .flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
  const type = TYPES[int(TYPES.length)]!;
  const cls = r() < 0.8 ? 1 : int(65536);
  const edns = r() < 0.4;
  const flags = r() < 0.8 ? 0x0100 : int(65536);
  const head = Buffer.from([int(256), int(256), flags >> 8, flags & 0xff, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0]);
  const q = Buffer.concat([head, ...labels, Buffer.from([0, type >> 8, type & 0xff, cls >> 8, cls & 0xff])]);
  if (!edns) return q;
  const size = int(65536);
  const optData = r() < 0.3 ? Buffer.from(Array.from({ length: int(40) }, () => int(256))) : Buffer.alloc(0);
  const opt = Buffer.from([
    0,
    0,
    41,
    size >> 8,
    size & 0xff,
    0,
    int(3),
    int(256),
    0,
    optData.length >> 8,
    optData.length,
  ]);
  return Buffer.concat([q, opt, optData]);
}

/** A random or mutated packet. */
export function fuzzPacket(r: () => number): Buffer {
  const int = (n: number) => Math.floor(r() * n);
  if (r() < 0.25) return Buffer.from(Array.from({ length: int(r() < 0.9 ? 600 : 4096) }, () => int(256)));
  const b = query(r);
  switch (int(8)) {
    case 0: // bytes flipped anywhere
      for (let i = 0, n = 1 + int(6); i < n; i++) b[int(b.length)] = int(256);
      return b;
    case 1: // the header's flags and counts
      for (let i = 0, n = 1 + int(3); i < n; i++) b[2 + int(10)] = int(256);
      return b;
    case 2: // truncated
      return b.subarray(0, int(b.length));
    case 3: // garbage appended
      return Buffer.concat([b, Buffer.from(Array.from({ length: 1 + int(300) }, () => int(256)))]);
    case 4: {
      // a compression pointer planted in the name: forward, backward, to itself (RFC 1035 4.1.4)
      const at = 12 + int(Math.max(1, b.length - 16));
      const to = r() < 0.3 ? at : int(b.length + 64);
      b[at] = 0xc0 | ((to >> 8) & 0x3f);
      if (at + 1 < b.length) b[at + 1] = to & 0xff;
      return b;
    }
    case 5: // a label length off by a little
      b[12] = (b[12]! + int(5) - 2) & 0xff;
      return b;
    case 6: // counts that promise more records than there are
      b.writeUInt16BE(int(65536), 4 + 2 * int(4));
      return b;
    default:
      return b;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runFuzz(o: FuzzOptions): Promise<FuzzResult> {
  const log = o.log ?? (() => {});
  const checkEvery = o.checkEvery ?? 10_000;
  const r = rng(o.seed ?? 0x5eed16);
  const res: FuzzResult = {
    packets: 0,
    tcpStreams: 0,
    crashes: 0,
    checks: 0,
    failedChecks: 0,
    replies: 0,
    drops: 0,
    rssStartKiB: 0,
    rssEndKiB: 0,
    rssGrowthPct: 0,
    rssKiB: [],
    fdsStart: 0,
    fdsEnd: 0,
    problems: [],
  };
  const host = await TestHost.start();
  const sb = await Netns.create('cnmd-rel');
  let udp: dgram.Socket | undefined;
  let dns: SandboxDns | undefined;
  try {
    await host.ok('network', 'create', 'fz', '--subnet', '10.99.0.0/24');
    await host.ok('service', 'create', 'web', '--network', 'fz', '--mode', 'dnsrr', '--port', 'http=80/tcp');
    const ep = await host.json<{ ip: string }>(
      'attach',
      sb.name,
      ...['--network', 'fz', '--name', 'target', '--alias', 'alias1', '--service', 'web'],
    );
    udp = await bindUdpIn(sb.path, '0.0.0.0', 0);
    udp.on('message', () => res.replies++);
    dns = await SandboxDns.open(sb.path);
    const d = dns;

    /** The daemon is up and answers right over UDP and TCP; restarts it when it died. */
    const check = async (when: string) => {
      res.checks++;
      if (!(await alive(host.pid))) {
        res.crashes++;
        res.problems.push(`${when}: the daemon died: ${host.log.split('\n').slice(-20).join('\n')}`);
        await host.startDaemon();
      }
      const a = await d.ask('target', { tries: 5, timeoutMs: 1000 });
      const t = await d.ask('tasks.web', { tries: 5, timeoutMs: 1000 });
      const overTcp = await tcpAsk(sb.path, 'alias1').catch((e: Error) => e.message);
      const ok =
        a?.rcode === 0 &&
        a.addresses.join() === ep.ip &&
        t?.addresses.join() === ep.ip &&
        typeof overTcp !== 'string' &&
        overTcp.addresses.join() === ep.ip;
      if (!ok) {
        res.failedChecks++;
        res.problems.push(
          `${when}: target ${JSON.stringify(a)}, tasks.web ${JSON.stringify(t)}, tcp ${JSON.stringify(overTcp)}`,
        );
      }
    };

    let sampling = false;
    const sendUdp = async (n: number) => {
      for (let i = 0; i < n; i++) {
        udp!.send(fuzzPacket(r), 53, '127.0.0.11');
        res.packets++;
        if (sampling && res.packets % Math.max(1, Math.floor(checkEvery / 4)) === 0) {
          res.rssKiB.push(totals(await processTree(host.pid!)).rssKiB);
        }
        // Let the daemon read before its receive buffer overflows: a dropped packet tests nothing.
        if (i % 32 === 31) {
          await new Promise((res) => setImmediate(res));
          for (let w = 0; w < 2000 && resolverQueue(sb.path).queued > 32 * 1024; w++) await sleep(1);
        }
      }
    };

    // Warm-up, then the baseline: RSS and fds of the daemon and its children.
    await sendUdp(Math.min(checkEvery, o.packets));
    await check('after the warm-up');
    await sleep(500);
    const start = totals(await processTree(host.pid!));
    res.rssStartKiB = start.rssKiB;
    sampling = true;
    res.fdsStart = start.fds;
    log(`fuzz: baseline RSS ${(start.rssKiB / 1024).toFixed(1)} MiB, ${start.fds} fds, ${start.processes} processes`);

    let tcpDone = 0;
    while (res.packets < o.packets || tcpDone < o.tcpStreams) {
      const n = Math.min(checkEvery, o.packets - res.packets);
      // The TCP streams are spread over the run: a share of them with each round's packets.
      const share = n > 0 ? Math.ceil((o.tcpStreams * n) / o.packets) : o.tcpStreams;
      const streams = Math.min(o.tcpStreams - tcpDone, share);
      await Promise.all([sendUdp(n), tcpStreams(sb.path, streams, r)]);
      tcpDone += streams;
      res.tcpStreams = tcpDone;
      await check(`after ${res.packets} packets, ${tcpDone} streams`);
      if (res.packets % (10 * checkEvery) === 0 || res.packets >= o.packets) {
        const now = totals(await processTree(host.pid!));
        log(
          `fuzz: ${res.packets} packets, ${tcpDone} streams, ${res.replies} replies, RSS ${(now.rssKiB / 1024).toFixed(1)} MiB, ` +
            `${now.fds} fds, ${resolverQueue(sb.path).drops} dropped, ${res.failedChecks} failed check(s), ${res.crashes} crash(es)`,
        );
      }
    }
    await sleep(1000); // the last streams' sockets close on the daemon's side
    res.drops = resolverQueue(sb.path).drops;
    const end = totals(await processTree(host.pid!));
    res.rssEndKiB = end.rssKiB;
    res.fdsEnd = end.fds;
    res.rssGrowthPct = rssGrowthPct([start.rssKiB, ...res.rssKiB, end.rssKiB]);
    if (end.fds > start.fds) res.problems.push(`fds grew from ${start.fds} to ${end.fds}`);
    return res;
  } finally {
    dns?.close();
    udp?.close();
    await host.close();
    await sb.remove().catch(() => {});
  }
}

/**
 * The resolver's UDP socket (127.0.0.11) in the sandbox, from /proc/net/udp read inside its
 * namespace: the bytes waiting in its receive buffer, and the packets dropped when it was full.
 */
function resolverQueue(netns: string): { queued: number; drops: number } {
  const text = withNetns(netns, () => readFileSync('/proc/thread-self/net/udp', 'utf8'));
  let queued = 0;
  let drops = 0;
  for (const l of text.trim().split('\n').slice(1)) {
    const f = l.trim().split(/\s+/);
    if (!f[1]?.startsWith('0B00007F:')) continue;
    queued += Number.parseInt(f[4]!.split(':')[1]!, 16);
    drops += Number(f[f.length - 1]);
  }
  return { queued, drops };
}

/** One A query over TCP (RFC 1035 4.2.2: a two-byte length first). */
export async function tcpAsk(netns: string, name: string): Promise<{ rcode: number; addresses: string[] }> {
  const s = await connectIn(netns, '127.0.0.11', 53);
  try {
    const q = aQuery(0x1234, name);
    const len = Buffer.from([q.length >> 8, q.length & 0xff]);
    s.write(Buffer.concat([len, q]));
    const m = await readMessage(s, 3000);
    const a = m && parseAnswer(m);
    if (!a) throw new Error(`no answer over TCP for ${name}`);
    return { rcode: a.rcode, addresses: a.addresses };
  } finally {
    s.destroy();
  }
}

function readMessage(s: net.Socket, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (m: Buffer | undefined) => {
      clearTimeout(timer);
      s.off('data', onData);
      resolve(m);
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    s.on('data', onData);
    s.once('close', () => done(undefined));
  });
}

/** `count` hostile TCP streams, at most 32 at once. */
async function tcpStreams(netns: string, count: number, r: () => number): Promise<void> {
  const int = (n: number) => Math.floor(r() * n);
  let next = 0;
  const one = async () => {
    const s = await connectIn(netns, '127.0.0.11', 53).catch(() => undefined);
    if (!s) return;
    s.resume(); // answers are read and dropped
    try {
      const p = fuzzPacket(r);
      const framed = (len: number, body: Buffer) => Buffer.concat([Buffer.from([len >> 8, len & 0xff]), body]);
      switch (int(7)) {
        case 0: // cut: part of a length, or of a message, then a reset
          s.write(framed(p.length, p).subarray(0, 1 + int(p.length + 1)));
          await sleep(int(20));
          s.resetAndDestroy();
          return;
        case 1: // slow: a byte at a time
          for (const b of framed(p.length, p).subarray(0, 24)) {
            if (s.destroyed) return;
            s.write(Buffer.from([b]));
            await sleep(5 + int(20));
          }
          break;
        case 2: // a length past the data, then the end of the stream
          s.write(framed(p.length + 1 + int(65535 - p.length), p));
          s.end();
          await sleep(50);
          break;
        case 3: // a length of 0, and of 65535 with little behind it
          s.write(framed(0, Buffer.alloc(0)));
          s.write(framed(65535, Buffer.alloc(int(3000), int(256))));
          await sleep(50);
          break;
        case 4: // several messages at once, good and bad
          s.write(
            Buffer.concat(Array.from({ length: 2 + int(20) }, () => fuzzPacket(r)).map((m) => framed(m.length, m))),
          );
          await sleep(50);
          break;
        case 5: // idle: connected, nothing sent
          await sleep(200 + int(800));
          break;
        default: // one fuzzed message, framed right
          s.write(framed(p.length, p));
          await sleep(20);
      }
    } finally {
      s.destroy();
    }
  };
  const workers = Array.from({ length: Math.min(32, count) }, async () => {
    while (next < count) {
      next++;
      await one();
    }
  });
  await Promise.all(workers);
}
