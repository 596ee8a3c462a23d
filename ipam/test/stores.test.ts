import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore, Ipam, MemoryStore, type Store } from '../src/index.js';
import { codeOf } from './helpers.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cnmd-ipam-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const stores: [string, () => Promise<Store>][] = [
  ['memory', async () => new MemoryStore()],
  ['file', () => FileStore.open(join(dir, 'state.json'))],
];

describe.each(stores)('%s store: conditional writes', (_, open) => {
  it('create fails on an existing key, update on a stale revision, delete on a stale one', async () => {
    const s = await open();
    const [r1] = await s.commit([{ op: 'create', key: 'k', value: 'a' }]);
    expect(typeof r1).toBe('number');
    expect(await s.commit([{ op: 'create', key: 'k', value: 'b' }])).toEqual(['conflict']);
    const [r2] = await s.commit([{ op: 'update', key: 'k', value: 'c', revision: r1 as number }]);
    expect(r2).toBeGreaterThan(r1 as number);
    expect(await s.commit([{ op: 'update', key: 'k', value: 'd', revision: r1 as number }])).toEqual(['conflict']);
    expect(await s.commit([{ op: 'delete', key: 'k', revision: r1 as number }])).toEqual(['conflict']);
    expect(await s.list('k')).toEqual([{ key: 'k', value: 'c', revision: r2 }]);
    await s.commit([{ op: 'delete', key: 'k' }]);
    expect(await s.list('')).toEqual([]);
    await s.close();
    expect(await codeOf(s.commit([{ op: 'create', key: 'x', value: '' }]))).toBe('IPAM_STORE_CLOSED');
  });

  it('lists by prefix', async () => {
    const s = await open();
    await s.commit([
      { op: 'create', key: 'a/1', value: '' },
      { op: 'create', key: 'a/2', value: '' },
      { op: 'create', key: 'b/1', value: '' },
    ]);
    expect((await s.list('a/')).map((e) => e.key).sort()).toEqual(['a/1', 'a/2']);
    await s.close();
  });
});

describe('file store', () => {
  const path = () => join(dir, 'state.json');

  it('keeps pools, addresses, MACs and ids across a restart', async () => {
    let store = await FileStore.open(path());
    let ipam = new Ipam({ store });
    await ipam.start();
    const p = await ipam.requestPool({
      subnet: '10.5.0.0/24',
      ipRange: '10.5.0.128/25',
      auxAddresses: { r: '10.5.0.200' },
    });
    const a = await ipam.requestAddress(p.id, { mac: true });
    await ipam.requestAddress(p.id, { address: '10.5.0.9', mac: '02:00:00:00:00:09' });
    await ipam.requestId('vni');
    await store.close();

    store = await FileStore.open(path());
    ipam = new Ipam({ store });
    await ipam.start();
    expect(ipam.pool(p.id)).toEqual({ ...p, used: 2 });
    expect(ipam.addresses(p.id)).toEqual([{ address: '10.5.0.9', mac: '02:00:00:00:00:09' }, a]);
    expect(await codeOf(ipam.requestAddress(p.id, { address: a.address }))).toBe('IPAM_ADDRESS_IN_USE');
    expect(await codeOf(ipam.requestAddress(p.id, { mac: a.mac! }))).toBe('IPAM_MAC_IN_USE');
    expect((await ipam.requestAddress(p.id)).address).toBe('10.5.0.129');
    expect(await ipam.requestId('vni')).toBe(4097);
    await store.close();
  });

  it('batches a burst into few writes, yet acknowledges nothing before it is on disk', async () => {
    const store = await FileStore.open(path());
    const ipam = new Ipam({ store });
    await ipam.start();
    const p = await ipam.requestPool({ subnet: '10.6.0.0/16' });
    const onDisk = async () =>
      (await readFile(path(), 'utf8').catch(() => '')) + (await readFile(`${path()}.log`, 'utf8'));
    const done = await Promise.all(
      Array.from({ length: 500 }, async () => {
        const a = await ipam.requestAddress(p.id);
        // Acknowledged: it must be in the snapshot or the journal now.
        return (await onDisk()).includes(`"addr/${p.id}/${a.address}"`);
      }),
    );
    expect(done.every(Boolean)).toBe(true);
    // Few flushes: far fewer journal lines than allocations.
    const lines = (await readFile(`${path()}.log`, 'utf8')).trim().split('\n').length;
    expect(lines).toBeLessThan(100);
    await store.close();
  });

  it('drops a torn last journal line (a flush that never completed) and refuses damage before it', async () => {
    let store = await FileStore.open(path());
    await store.commit([{ op: 'create', key: 'a', value: '1' }]);
    await store.commit([{ op: 'create', key: 'b', value: '2' }]);
    await store.close();
    const log = await readFile(`${path()}.log`, 'utf8');
    await writeFile(`${path()}.log`, `${log}0123456789ab [["c",3,`);
    store = await FileStore.open(path());
    expect((await store.list('')).map((e) => e.key).sort()).toEqual(['a', 'b']);
    await store.commit([{ op: 'create', key: 'd', value: '4' }]);
    await store.close();
    store = await FileStore.open(path());
    expect((await store.list('')).map((e) => e.key).sort()).toEqual(['a', 'b', 'd']);
    await store.close();
    const lines = (await readFile(`${path()}.log`, 'utf8')).split('\n');
    lines[0] = lines[0]!.replace('"1"', '"9"');
    await writeFile(`${path()}.log`, lines.join('\n'));
    expect(await codeOf(FileStore.open(path()))).toBe('IPAM_STORE_CORRUPT');
  });

  it('folds a large journal into a new snapshot and keeps every entry', async () => {
    const store = await FileStore.open(path());
    const value = 'v'.repeat(2000);
    for (let i = 0; i < 700; i++) await store.commit([{ op: 'create', key: `k/${i}`, value }]);
    for (let i = 0; i < 700; i += 2) await store.commit([{ op: 'delete', key: `k/${i}` }]);
    await store.close();
    const reopened = await FileStore.open(path());
    expect((await reopened.list('k/')).length).toBe(350);
    expect(JSON.parse(await readFile(path(), 'utf8')).entries.length).toBeGreaterThan(0);
    await reopened.close();
  });

  it.each([
    ['not JSON', '{"format":"cnmd-store",', 'IPAM_STORE_CORRUPT'],
    ['another format', '{"format":"other","version":1,"revision":0,"entries":[]}', 'IPAM_STORE_CORRUPT'],
    ['a bad entry', '{"format":"cnmd-store","version":1,"revision":3,"entries":[["k",9,"v"]]}', 'IPAM_STORE_CORRUPT'],
    ['an empty file', '', 'IPAM_STORE_CORRUPT'],
    ['a newer version', '{"format":"cnmd-store","version":2,"revision":0,"entries":[]}', 'IPAM_STORE_VERSION'],
  ])('refuses %s instead of starting empty, and leaves the file alone', async (_, text, code) => {
    await writeFile(path(), text);
    expect(await codeOf(FileStore.open(path()))).toBe(code);
    expect(await readFile(path(), 'utf8')).toBe(text);
    // The failed open released its lock: a fixed file opens.
    await writeFile(path(), '{"format":"cnmd-store","version":1,"revision":0,"entries":[]}');
    await (await FileStore.open(path())).close();
  });

  it('refuses a second opener while the first holds the lock; takes over a dead holder', async () => {
    const s = await FileStore.open(path());
    expect(await codeOf(FileStore.open(path()))).toBe('IPAM_STORE_LOCKED');
    await s.close();
    await s.close(); // idempotent
    const boot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    await writeFile(`${path()}.lock`, `999999999 ${boot}\n`);
    await (await FileStore.open(path())).close();
  });
});

describe('restart', () => {
  it('continues after the newest address, not from the start of the pool', async () => {
    const store = new MemoryStore();
    let ipam = new Ipam({ store });
    await ipam.start();
    const p = await ipam.requestPool({ subnet: '10.8.0.0/24' });
    for (let i = 0; i < 5; i++) await ipam.requestAddress(p.id);
    await ipam.releaseAddress(p.id, '10.8.0.2');
    ipam = new Ipam({ store });
    await ipam.start();
    expect((await ipam.requestAddress(p.id)).address).toBe('10.8.0.7');
  });
});
