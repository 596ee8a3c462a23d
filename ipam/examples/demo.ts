// A tour of @cnmd/ipam on a file store: pools as Docker makes them, addresses and MACs,
// a refused request, VNIs and marks, and a restart that keeps everything.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore, Ipam, isIpamError } from '../src/index.js';

const dir = await mkdtemp(join(tmpdir(), 'cnmd-demo-'));
const path = join(dir, 'state.json');
try {
  let store = await FileStore.open(path);
  let ipam = new Ipam({ store });
  await ipam.start();

  const bridge = await ipam.requestPool();
  const custom = await ipam.requestPool({
    subnet: '10.10.0.0/16',
    ipRange: '10.10.5.0/24',
    auxAddresses: { nas: '10.10.0.250' },
  });
  const overlay = await ipam.requestPool({ space: 'global', macs: 'ip-derived' });
  const v6 = await ipam.requestPool({ family: 6 });
  for (const p of [bridge, custom, overlay, v6]) {
    console.log(
      `pool ${p.id.padEnd(22)} gateway ${String(p.gateway).padEnd(12)} ${p.ipRange ? `range ${p.ipRange}` : ''}`,
    );
  }
  for (const p of [bridge, custom, overlay, v6]) {
    const a = await ipam.requestAddress(p.id, { mac: true });
    console.log(`  ${p.subnet.padEnd(16)} -> ${a.address.padEnd(12)} mac ${a.mac}`);
  }
  const fixed = await ipam.requestAddress(custom.id, { address: '10.10.9.9' });
  console.log(`  given address      -> ${fixed.address}`);
  try {
    await ipam.requestPool({ subnet: '10.10.128.0/24' });
  } catch (err) {
    if (!isIpamError(err)) throw err;
    console.log(`refused: ${err.code}: ${err.message}`);
  }
  console.log(`vni ${await ipam.requestId('vni')}, service mark ${await ipam.requestId('mark')}`);
  await store.close();

  store = await FileStore.open(path);
  ipam = new Ipam({ store });
  await ipam.start();
  console.log(`after a restart from ${path}:`);
  for (const p of ipam.pools())
    console.log(
      `  ${p.id.padEnd(22)} ${p.used} in use: ${ipam
        .addresses(p.id)
        .map((a) => a.address)
        .join(', ')}`,
    );
  await store.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
