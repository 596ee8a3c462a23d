// globalSetup of the `privileged` project: it needs root and the kernel tools it drives.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('the privileged tests need root (network namespaces, links, nftables): run them as root');
  }
  for (const tool of ['ip', 'nft']) {
    try {
      execFileSync(tool, ['-V'], { stdio: 'ignore' });
    } catch {
      throw new Error(`the privileged tests need '${tool}': run .ci/run once to install what they use`);
    }
  }
}
