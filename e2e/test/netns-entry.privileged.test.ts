// Entering a sandbox from Node: withNetns and the checks on a namespace path.
import { readFileSync, statSync } from 'node:fs';
import { currentNetns, isSidecarError, openNetns, withNetns } from '@cnmd/sidecar';
import { expect } from 'vitest';
import { test } from '../src/fixtures.js';

/** The inode that identifies a namespace (what `ls -iL /proc/self/ns/net` prints). */
const nsId = (path: string): bigint => statSync(path, { bigint: true }).ino;

/** The interfaces /proc/net/dev lists: those of the reader's namespace. */
const interfaces = (): string[] =>
  readFileSync('/proc/net/dev', 'utf8')
    .split('\n')
    .filter((l) => l.includes(':'))
    .map((l) => l.split(':')[0]!.trim());

test('runs the function inside the sandbox and returns to the original namespace', ({ netns }) => {
  const home = nsId('/proc/thread-self/ns/net');
  const inside = withNetns(netns.path, () => ({
    path: currentNetns(),
    id: nsId('/proc/thread-self/ns/net'),
    links: interfaces(),
  }));
  expect(inside).toEqual({ path: netns.path, id: nsId(netns.path), links: ['lo'] });
  expect(nsId('/proc/thread-self/ns/net')).toBe(home);
  expect(currentNetns()).toBeUndefined();
});

test('returns to the original namespace when the function throws', ({ netns }) => {
  const home = nsId('/proc/thread-self/ns/net');
  expect(() =>
    withNetns(netns.path, () => {
      throw new Error('boom');
    }),
  ).toThrow('boom');
  expect(nsId('/proc/thread-self/ns/net')).toBe(home);
});

test('refuses to nest, and refuses an async function', ({ netns }) => {
  let inner: unknown;
  withNetns(netns.path, () => {
    try {
      withNetns(netns.path, () => 0);
    } catch (err) {
      inner = err;
    }
  });
  expect(isSidecarError(inner, 'SIDECAR_NETNS_NESTED')).toBe(true);
  expect(() => withNetns(netns.path, async () => 0)).toThrow(expect.objectContaining({ code: 'SIDECAR_NETNS_ASYNC' }));
  expect(currentNetns()).toBeUndefined();
});

test('an open handle can be entered many times, and /proc/PID/ns/net is a namespace too', ({ netns }) => {
  using handle = openNetns(netns.path);
  for (let i = 0; i < 3; i++) expect(withNetns(handle, interfaces)).toEqual(['lo']);
  using own = openNetns(`/proc/${process.pid}/ns/net`);
  expect(withNetns(own, () => nsId('/proc/thread-self/ns/net'))).toBe(nsId('/proc/thread-self/ns/net'));
});

test.each([
  ['a missing path', '/run/netns/cnmd-no-such-namespace'],
  ['a regular file', '/etc/hostname'],
  ['a directory', '/run'],
  ['a mount namespace', '/proc/self/ns/mnt'],
])('%s is not a network namespace: SIDECAR_NETNS_INVALID', (_what, path) => {
  expect(() => openNetns(path)).toThrow(expect.objectContaining({ code: 'SIDECAR_NETNS_INVALID' }));
  expect(() => withNetns(path, () => 0)).toThrow(expect.objectContaining({ code: 'SIDECAR_NETNS_INVALID' }));
  expect(currentNetns()).toBeUndefined();
});
