// npm run bench -w @cnmd/e2e -- reliability [crashes|fuzz|soak|api]...: the reliability campaign
// of #16, each part on a real daemon in a simulated host namespace (e2e/src/reliability/):
// 1. crashes: kill -9 of the daemon at random moments while 8 clients attach, detach and create
//    and remove services, a restart, and a check of what each client was told (lost, duplicated,
//    leaked);
// 2. fuzz: random and mutated DNS packets (UDP) and hostile TCP streams at 127.0.0.11 in a
//    sandbox, correct queries checked every 10,000 packets, the daemon's RSS;
// 3. soak: attach/detach cycles over 200 sandboxes, counts and RSS sampled every 1,000 cycles;
// 4. api: the admin API under hostile input, each case's code and the state byte-identical.
// With no part named, all four, one after another. Sizes: CNMD_BENCH_KILLS (100),
// CNMD_BENCH_FUZZ_PACKETS (1,000,000), CNMD_BENCH_FUZZ_STREAMS (10,000), CNMD_BENCH_SOAK_CYCLES
// (10,000), CNMD_BENCH_SOAK_SANDBOXES (200). The last line is one JSON object; the exit code is 1
// when a count that should be 0 is not, or an RSS grew past 10%.
import { type ApiResult, runApi } from '../src/reliability/api.js';
import { type CrashResult, runCrashes } from '../src/reliability/crashes.js';
import { type FuzzResult, runFuzz } from '../src/reliability/fuzz.js';
import { runSoak, type SoakResult } from '../src/reliability/soak.js';

const PARTS = ['crashes', 'fuzz', 'soak', 'api'] as const;
type Part = (typeof PARTS)[number];

const num = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const t0 = Date.now();
const log = (line: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${line}`);

function problems(part: string, list: string[]): void {
  for (const p of list.slice(0, 30)) console.log(`${part}: ${p}`);
  if (list.length > 30) console.log(`${part}: … ${list.length - 30} more`);
}

export async function run(): Promise<void> {
  const asked = process.argv.slice(3);
  for (const a of asked) {
    if (!(PARTS as readonly string[]).includes(a)) {
      console.error(`unknown part ${a}: ${PARTS.join('|')}`);
      process.exit(2);
    }
  }
  const parts = new Set<Part>(asked.length ? (asked as Part[]) : PARTS);
  let crashes: CrashResult | undefined;
  let fuzz: FuzzResult | undefined;
  let soak: SoakResult | undefined;
  let api: ApiResult | undefined;

  if (parts.has('crashes')) {
    crashes = await runCrashes({ kills: num('CNMD_BENCH_KILLS', 100), log });
    log(
      `crashes: ${crashes.kills} kills, ${crashes.requests} requests (${crashes.cut} cut by a kill): ` +
        `lost ${crashes.lost}, duplicated ${crashes.duplicated}, leaked ${crashes.leaked}`,
    );
    problems('crashes', [...crashes.problems, ...crashes.unexpected.map((u) => `unexpected answer: ${u}`)]);
  }
  if (parts.has('fuzz')) {
    fuzz = await runFuzz({
      packets: num('CNMD_BENCH_FUZZ_PACKETS', 1_000_000),
      tcpStreams: num('CNMD_BENCH_FUZZ_STREAMS', 10_000),
      log,
    });
    log(
      `fuzz: ${fuzz.packets} packets (${fuzz.replies} replies, ${fuzz.drops} dropped by a full buffer), ` +
        `${fuzz.tcpStreams} TCP streams, ${fuzz.checks} checks (${fuzz.failedChecks} failed), ${fuzz.crashes} crash(es); ` +
        `RSS ${(fuzz.rssStartKiB / 1024).toFixed(1)} → ${(fuzz.rssEndKiB / 1024).toFixed(1)} MiB ` +
        `(growth ${fuzz.rssGrowthPct}% floor to floor), fds ${fuzz.fdsStart} → ${fuzz.fdsEnd}`,
    );
    problems('fuzz', fuzz.problems);
  }
  if (parts.has('soak')) {
    const cycles = num('CNMD_BENCH_SOAK_CYCLES', 10_000);
    soak = await runSoak({
      cycles,
      sandboxes: num('CNMD_BENCH_SOAK_SANDBOXES', 200),
      sampleEvery: Math.min(1000, Math.max(1, Math.floor(cycles / 10))),
      log,
    });
    log(`soak: ${soak.cycles} cycles, leaks ${soak.leaks}, RSS growth ${soak.rssGrowthPct}%`);
    problems('soak', soak.problems);
  }
  if (parts.has('api')) {
    api = await runApi({ log });
    log(
      `api: ${api.cases} cases, ${api.wrong} with another code, ${api.stateChanges} state change(s), ${api.exits} exit(s)`,
    );
    problems('api', api.problems);
  }

  const result = {
    bench: 'reliability',
    ...(crashes
      ? { kills: crashes.kills, lost: crashes.lost, duplicated: crashes.duplicated, leaked: crashes.leaked }
      : {}),
    ...(fuzz ? { fuzz_packets: fuzz.packets, fuzz_tcp_streams: fuzz.tcpStreams } : {}),
    ...(fuzz || api ? { crashes: (fuzz?.crashes ?? 0) + (api?.exits ?? 0) } : {}),
    ...(fuzz ? { fuzz_failed_checks: fuzz.failedChecks, fuzz_rss_growth_pct: fuzz.rssGrowthPct } : {}),
    ...(soak ? { soak_cycles: soak.cycles, soak_leaks: soak.leaks, soak_rss_growth_pct: soak.rssGrowthPct } : {}),
    ...(api ? { api_cases: api.cases, api_wrong_codes: api.wrong, api_state_changes: api.stateChanges } : {}),
    minutes: Math.round((Date.now() - t0) / 6000) / 10,
  };
  const failed =
    (crashes && crashes.lost + crashes.duplicated + crashes.leaked > 0) ||
    (fuzz && (fuzz.crashes > 0 || fuzz.failedChecks > 0 || fuzz.rssGrowthPct > 10)) ||
    (soak && (soak.leaks > 0 || soak.rssGrowthPct > 10)) ||
    (api && (api.exits > 0 || api.stateChanges > 0 || api.wrong > 0));
  if (failed) process.exitCode = 1;
  console.log(JSON.stringify(result));
}
