// Kill -9 in the middle of a burst of allocations, reopen: every acknowledged allocation is
// there, every acknowledged release is gone, and nothing is handed out twice.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FileStore, Ipam } from '../src/index.js';

const child = new URL('./fixtures/crash-child.mjs', import.meta.url).pathname;
const SUBNET = '10.44.0.0/16';
let dir: string;

beforeEach(async () => {
  if (!existsSync(new URL('../dist/src/index.js', import.meta.url))) {
    throw new Error('the crash test runs the built package: run `npm run build` first');
  }
  dir = await mkdtemp(join(tmpdir(), 'cnmd-crash-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * Runs the child, kills it with SIGKILL once it has acknowledged `killAfter` changes, and
 * returns every line it printed before it died: it keeps working until the signal lands, and
 * a release it started (its "r" line) may have landed unseen otherwise.
 */
async function burst(path: string, killAfter: number): Promise<string[]> {
  const proc = spawn(process.execPath, [child, path, SUBNET], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const lines: string[] = [];
  let killed = false;
  try {
    for await (const line of createInterface({ input: proc.stdout })) {
      if (line === 'ready') continue;
      lines.push(line);
      if (!killed && lines.length >= killAfter) {
        proc.kill('SIGKILL');
        killed = true;
      }
    }
  } finally {
    proc.kill('SIGKILL');
    await exited; // reaped: its lock is now stale
  }
  return lines;
}

it('keeps every acknowledged change across SIGKILL at random moments', async () => {
  const path = join(dir, 'state.json');
  let before = new Set<string>(); // what the store held when the round started
  let acknowledged = 0;
  for (let round = 0; round < 12; round++) {
    const acks = await burst(path, 1 + Math.floor(Math.random() * 400));
    // The child releases only addresses it allocated in this round, and does not wrap
    // around a /16 in one round, so the last event per address decides: A (must be held),
    // R (must not be), r (a release under way: either).
    const last = new Map<string, string>();
    for (const line of acks) {
      const [kind, address] = line.split(' ') as [string, string];
      if (kind === 'A') expect(before.has(address), `${address} handed out twice`).toBe(false);
      last.set(address, kind);
    }
    acknowledged += acks.length;
    const store = await FileStore.open(path);
    try {
      const ipam = new Ipam({ store });
      await ipam.start();
      const held = new Set(ipam.addresses(`local/${SUBNET}`).map((a) => a.address));
      for (const [address, kind] of last) {
        if (kind === 'A') expect(held.has(address), `${address} acknowledged but lost`).toBe(true);
        if (kind === 'R') expect(held.has(address), `${address} released but back`).toBe(false);
      }
      for (const address of before) expect(held.has(address), `${address} from an earlier round lost`).toBe(true);
      // Whatever landed without an acknowledgement is held now and must not be handed out again.
      before = held;
    } finally {
      await store.close();
    }
  }
  expect(acknowledged).toBeGreaterThan(100);
});
