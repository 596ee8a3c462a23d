// globalSetup of the `privileged` and `docker` projects: they need root and the kernel tools they drive. Its
// teardown removes the /run/netns mount that `ip netns add` makes on first use, when the run
// made it and no namespace is left in it.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const isMount = (path: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === path);

export default function setup(): () => void {
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
  const mountedBefore = isMount('/run/netns');
  return () => {
    let empty = false;
    try {
      empty = readdirSync('/run/netns').length === 0;
    } catch {}
    if (!mountedBefore && empty && isMount('/run/netns')) {
      execFileSync('umount', ['/run/netns'], { stdio: 'ignore' });
    }
  };
}
