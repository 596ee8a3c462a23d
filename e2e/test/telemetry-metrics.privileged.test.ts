// Metrics as an operator gets them: a real Prometheus (Debian's), started by the test inside the
// simulated host, scrapes the daemon's --metrics-addr every second, and PromQL over its HTTP API
// counts the DNS requests a sandbox made and the attaches the daemon did. Without
// --metrics-addr the daemon listens on nothing (ss). Everything stays inside the host namespace.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns } from '../src/netns.js';

const PROMETHEUS = process.env.CNMD_PROMETHEUS ?? '/usr/bin/prometheus';
const METRICS_PORT = 9464;
const PROM_PORT = 9090;

/** Polls `fn` until it returns true, for at most `ms`. */
async function until(fn: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** TCP and UDP sockets listening in a namespace, as ss prints them with their processes. */
const listening = (ns: Netns) => ns.exec('ss', ['-H', '-l', '-t', '-u', '-n', '-p']);

describe('without --metrics-addr', () => {
  it('the daemon listens on nothing', async () => {
    const host = await TestHost.start();
    try {
      await host.ok('network', 'create', 'quiet', '--subnet', '10.118.0.0/24');
      const lines = (await listening(host.ns)).split('\n').filter((l) => l.includes(`pid=${host.pid},`));
      expect(lines).toEqual([]);
      expect(host.log).not.toMatch(/telemetry:/);
    } finally {
      await host.close();
    }
  });
});

describe('Prometheus scraping the daemon', () => {
  let host: TestHost;
  let prometheus: ChildProcess | undefined;
  let dir: string;
  const sandboxes: Netns[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cnmd-prom-'));
    host = await TestHost.start({ args: ['--metrics-addr', `127.0.0.1:${METRICS_PORT}`] });
    await writeFile(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }\n` +
        `scrape_configs:\n  - job_name: cnmd\n    static_configs: [{ targets: ['127.0.0.1:${METRICS_PORT}'] }]\n`,
    );
    // In the host's namespace, as an operator's Prometheus beside the daemon: nothing leaves it.
    prometheus = spawn(
      'ip',
      [
        'netns',
        'exec',
        host.ns.name,
        PROMETHEUS,
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${PROM_PORT}`,
      ],
      { stdio: 'ignore' },
    );
  });

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const gone = new Promise((r) => prometheus!.once('exit', r));
      prometheus.kill('SIGTERM');
      await gone;
    }
    for (const s of sandboxes) await s.remove().catch(() => {});
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** An instant PromQL query over Prometheus's HTTP API, asked from inside the host. */
  async function promql(query: string): Promise<number | undefined> {
    const out = await host.ns
      .exec('curl', [
        '-s',
        '--max-time',
        '3',
        '-G',
        `http://127.0.0.1:${PROM_PORT}/api/v1/query`,
        '--data-urlencode',
        `query=${query}`,
      ])
      .catch(() => '');
    if (!out) return undefined;
    const r = JSON.parse(out) as { status: string; data: { result: { value: [number, string] }[] } };
    const v = r.data?.result?.[0]?.value?.[1];
    return v === undefined ? undefined : Number(v);
  }

  it('listens on --metrics-addr, in the daemon', async () => {
    const lines = (await listening(host.ns)).split('\n').filter((l) => l.includes(`pid=${host.pid},`));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`127.0.0.1:${METRICS_PORT}`);
  });

  it('counts the DNS requests and the attaches, as PromQL reads them', { timeout: 90_000 }, async () => {
    const M = 4;
    const N = 25;
    await host.ok('network', 'create', 'front', '--subnet', '10.117.0.0/24');
    for (let i = 0; i < M; i++) {
      const sb = await Netns.create('cnmd-sb');
      sandboxes.push(sb);
      await host.ok('attach', sb.name, '--network', 'front', '--name', `c${i}`);
    }
    const asker = sandboxes[0]!;
    for (let i = 0; i < N; i++) {
      const out = await asker.exec('dig', ['@127.0.0.11', '+short', '+time=2', '+tries=1', `c${i % M}`, 'A']);
      expect(out.trim()).toMatch(/^10\.117\.0\.\d+$/);
    }
    // Every query of the sandbox, by its network, type and rcode; then the attach histogram.
    await until(async () => (await promql('sum(cnmd_dns_requests_total{network="front",type="A"})')) === N);
    expect(await promql('sum(cnmd_dns_requests_total{network="front",type="A",rcode="NOERROR"})')).toBe(N);
    expect(await promql('sum(cnmd_dns_request_duration_seconds_count{network="front"})')).toBe(N);
    // The fastest bucket is 25 µs: table answers land in the first few.
    expect(await promql('sum(cnmd_dns_request_duration_seconds_bucket{network="front",le="0.01"})')).toBe(N);
    await until(async () => (await promql('cnmd_sidecar_attach_duration_seconds_count')) === M);
    expect(await promql('cnmd_sidecar_attach_duration_seconds_bucket{le="+Inf"}')).toBe(M);
    const p50 = await promql('histogram_quantile(0.5, cnmd_sidecar_attach_duration_seconds_bucket)');
    expect(p50).toBeGreaterThan(0);
    expect(p50).toBeLessThan(30);
    expect(await promql('cnmd_sidecar_endpoints{network="front",status="ready"}')).toBe(M);
    expect(await promql('cnmd_sidecar_sandboxes')).toBe(M);
    expect(await promql('cnmd_ipam_pool_used_addresses{network="front",family="ipv4"}')).toBe(M);
    expect(await promql('cnmd_sidecar_networks{driver="bridge",scope="local"}')).toBe(1);
    // A failed attach is counted by its code (the address is taken).
    const again = await host.cli('attach', sandboxes[1]!.name, '--network', 'front');
    expect(again.code).not.toBe(0);
    await until(async () => (await promql('sum(cnmd_sidecar_attach_failures_total)')) === 1);
    expect(await promql('cnmd_sidecar_attach_failures_total{code="SIDECAR_ENDPOINT_EXISTS"}')).toBe(1);
    // up: Prometheus itself says the target answers.
    expect(await promql('up{job="cnmd"}')).toBe(1);
  });
});
