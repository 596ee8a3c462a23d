// globalSetup of the `privileged` and `docker` projects: they need root and the kernel tools they
// drive, and the built tree: the daemon they start (sidecar/bin/cnmd.js) and the worker
// processes and threads the sidecar starts (nft worker, prober) run from dist/, so the tree is
// built first (`tsc -b`, a second when nothing changed), else they would test old code. Its
// teardown removes the /run/netns mount that `ip netns add` makes on first use, when the run
// made it and no namespace is left in it.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { netnsMountGuard } from './netns.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export default async function setup(): Promise<() => Promise<void>> {
  if (process.getuid?.() !== 0) {
    throw new Error('the privileged tests need root (network namespaces, links, nftables): run them as root');
  }
  for (const tool of ['ip', 'nft']) {
    try {
      execFileSync(tool, ['-V'], { stdio: 'ignore' });
    } catch {
      throw new Error(`the privileged tests need '${tool}': run scripts/setup.sh once to install what they use`);
    }
  }
  try {
    execFileSync(`${root}node_modules/.bin/tsc`, ['-b'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`the build failed, and these tests run the built daemon: ${(err as { stdout?: Buffer }).stdout}`);
  }
  const release = await netnsMountGuard();
  return async () => {
    const left = await release();
    if (left.length > 0) console.error(`namespaces left behind in /run/netns: ${left.join(' ')}`);
  };
}
