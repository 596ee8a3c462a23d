// npm run bench -w @cnmd/e2e -- NAME: runs one of e2e's benchmarks (built first). Each prints
// what it measured and, as its last line, one JSON object. The /run/netns mount that their
// namespaces make is taken away after, as the test projects' globalSetup does.
import { netnsMountGuard } from '../src/netns.js';

const benches: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  docker: () => import('./docker.bench.js'),
  cluster: () => import('./cluster.bench.js'),
  reliability: () => import('./reliability.bench.js'),
  overlay: () => import('./overlay.bench.js'),
  'overlay-encrypted': () => import('./overlay-encrypted.bench.js'),
};

const name = process.argv[2] ?? '';
const load = benches[name];
if (!load) {
  console.error(`usage: npm run bench -w @cnmd/e2e -- ${Object.keys(benches).join('|')}`);
  process.exit(2);
}
const release = await netnsMountGuard();
try {
  await (await load()).run();
} finally {
  const left = await release();
  if (left.length > 0) console.error(`namespaces left behind in /run/netns: ${left.join(' ')}`);
}
