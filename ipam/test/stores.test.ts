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
    const done = await Promise.all(
      Array.from({ length: 500 }, async () => {
        const a = await ipam.requestAddress(p.id);
        // Acknowledged: it must be in the file now.
        return (await readFile(path(), 'utf8')).includes(`"addr/${p.id}/${a.address}"`);
      }),
    );
    expect(done.every(Boolean)).toBe(true);
    await store.close();
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

  it('fails a commit it cannot write, and takes it back: the request changed nothing', async () => {
    const store = await FileStore.open(path());
    const ipam = new Ipam({ store });
    await ipam.start();
    const p = await ipam.requestPool({ subnet: '10.7.0.0/24' });
    const before = await readFile(path(), 'utf8');
    // Make the directory unwritable for the temp file: the next flush fails.
    await rm(dir, { recursive: true, force: true });
    expect(await codeOf(ipam.requestAddress(p.id))).toBe('IPAM_STORE_IO');
    expect(ipam.pool(p.id)?.used).toBe(0);
    expect(await store.list('addr/')).toEqual([]);
    // Once the disk is back, the same address is handed out and persisted.
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir);
    await writeFile(path(), before);
    expect((await ipam.requestAddress(p.id)).address).toBe('10.7.0.2');
    await store.close();
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
