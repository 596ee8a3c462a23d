// `ip netns add` bind-mounts /run/netns on its first use, and nothing takes it away: a bench that
// made namespaces unmounts it at the end, if the run mounted it and left no namespace in it.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const netnsMounted = async () =>
  (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some((l) => l.split(' ')[4] === '/run/netns');

/** Call before the first namespace; call what it returns at the end, pass or fail. */
export async function netnsMountGuard(): Promise<() => Promise<void>> {
  const mountedBefore = await netnsMounted();
  return async () => {
    if (!mountedBefore && (await readdir('/run/netns').catch(() => [])).length === 0 && (await netnsMounted())) {
      await promisify(execFile)('umount', ['/run/netns']).catch(() => {});
    }
  };
}
