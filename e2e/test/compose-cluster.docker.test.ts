// docker-compose.yml's `cluster` profile on a real engine, as the README tells a user to run it
// on each host: a NATS server with JetStream beside cnmd, and cnmd joined to it
// (CNMD_CONFIG=cnmd-cluster.json). One host here: the multi-host behaviour itself is the
// privileged tests' (e2e/test/cluster*.privileged.test.ts), on simulated hosts.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const project = `cnmdn-${randomBytes(3).toString('hex')}`;
let vars: Record<string, string> = {};

function sh(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const env = { ...process.env, DOCKER_CONFIG: process.env.DOCKER_CONFIG ?? '/tmp/cnmd-docker/dockercfg', ...vars };
  return new Promise((resolve) => {
    execFile(cmd, args, { env, cwd: repo, maxBuffer: 64 << 20 }, (err, out, errOut) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out, err: errOut }),
    );
  });
}

async function ok(cmd: string, ...args: string[]): Promise<string> {
  const r = await sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.err}`);
  return r.out;
}

const compose = (...args: string[]) => sh('docker', ['compose', '-p', project, '--profile', 'cluster', ...args]);
const cnmd = (...args: string[]) => ok('docker', 'exec', `${project}-cnmd-1`, 'node', 'sidecar/bin/cnmd.js', ...args);

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await f().catch((err) => void (last = err));
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms${last ? ` (${last})` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  const [base] = (await ok('bash', 'e2e/scripts/docker-base-image.sh')).trim().split(' ');
  vars = {
    CNMD_BASE_IMAGE: base!,
    CNMD_IMAGE: 'cnmd-test/cnmd:local',
    CNMD_NATS_IMAGE: 'cnmd-test/nats:local',
    CNMD_CONFIG: 'cnmd-cluster.json',
    CNMD_HOST_ID: 'compose-a',
    // Loopback ports of their own, away from any NATS this machine runs.
    CNMD_NATS_PORT: `127.0.0.1:${20000 + (randomBytes(2).readUInt16BE(0) % 20000)}`,
    CNMD_NATS_ROUTE_PORT: `127.0.0.1:${40000 + (randomBytes(2).readUInt16BE(0) % 20000)}`,
  };
  const r = await compose('up', '-d', '--build', 'nats', 'cnmd');
  if (r.code !== 0) throw new Error(`compose up: ${r.err}`);
}, 900_000);

afterAll(async () => {
  await compose('down', '-v', '-t', '1', '--remove-orphans');
});

it('cnmd joins the NATS server of the profile, under its host id, and makes global networks in it', async () => {
  const status = await until('connected', 60_000, async () => {
    const s = JSON.parse(await cnmd('cluster', 'status', '--json')) as {
      connected: boolean;
      host: string;
      hosts: { host: string; alive: boolean }[];
    };
    return s.connected && s.hosts.length > 0 ? s : undefined;
  });
  expect(status.host).toBe('compose-a');
  expect(status.hosts).toEqual([expect.objectContaining({ host: 'compose-a', alive: true })]);
  await cnmd('network', 'create', 'everywhere', '--scope', 'global');
  const nets = JSON.parse(await cnmd('network', 'ls', '--json')) as { name: string; scope?: string }[];
  expect(nets.find((n) => n.name === 'everywhere')?.scope).toBe('global');
  // The record is in the server's JetStream: the networks bucket holds one message.
  const jsz = JSON.parse(
    await ok(
      'docker',
      'exec',
      `${project}-nats-1`,
      'curl',
      '-s',
      'http://127.0.0.1:8222/jsz?accounts=true&streams=true',
    ),
  ) as { account_details?: { stream_detail?: { name: string; state: { messages: number } }[] }[] };
  const streams = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
  expect(streams.find((s) => s.name === 'KV_cnmd_networks')?.state.messages).toBe(1);
});

it('without the profile nothing of it starts: the default `up` is as before', async () => {
  const r = await sh('docker', ['compose', '-p', project, 'config', '--services']);
  expect(r.out.split('\n').filter(Boolean).sort()).toEqual(['client', 'cnmd', 'web']);
});
