// A full disk under the IPAM file store: a request that cannot be made durable fails with
// IPAM_STORE_IO and changes nothing, and once there is room again, allocation goes on.
// A small tmpfs of the test's own plays the disk.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore, Ipam } from '@cnmd/ipam';
import { afterEach, expect, it } from 'vitest';
import { run } from '../src/netns.js';

let dir: string | undefined;
let store: FileStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  if (!dir) return;
  await run('umount', [dir]).catch(() => {});
  await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

it('fails what it cannot write, changes nothing, and goes on once there is room', async () => {
  dir = await mkdtemp(join(tmpdir(), 'cnmd-full-'));
  await run('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'cnmd-test', dir]);
  const path = join(dir, 'state.json');
  const filler = join(dir, 'filler');
  store = await FileStore.open(path);
  let ipam = new Ipam({ store });
  await ipam.start();
  const pool = await ipam.requestPool({ subnet: '10.60.0.0/16' });
  // Leave about 16 KiB.
  await writeFile(filler, Buffer.alloc(256 * 1024 - 32 * 1024)).catch(() => {});
  const held: string[] = [];
  let failure: { code?: string } | undefined;
  for (let i = 0; i < 5000 && !failure; i++) {
    await ipam.requestAddress(pool.id).then(
      (a) => held.push(a.address),
      (e) => {
        failure = e;
      },
    );
  }
  expect(failure?.code).toBe('IPAM_STORE_IO');
  expect(held.length).toBeGreaterThan(10);
  // Nothing of the failed request stayed: in memory, and after a reopen.
  expect(ipam.pool(pool.id)!.used).toBe(held.length);
  await rm(filler);
  const next = await ipam.requestAddress(pool.id);
  expect(held).not.toContain(next.address);
  held.push(next.address);
  await store.close();
  store = await FileStore.open(path);
  ipam = new Ipam({ store });
  await ipam.start();
  expect(ipam.addresses(pool.id).map((a) => a.address)).toEqual(held);
  await store.close();
});
