// A labelled container's resolv.conf names cnmd's resolver, 127.0.0.11, with the search and
// options lines the engine gave (compose's dns_search, dns_opt) kept. The engine bind-mounts the
// file into the container, so it is rewritten in place (same inode: a rename would leave the
// container with the old file). It is the last step of an attach: a command can wait for it
// (`until grep -q 127.0.0.11 /etc/resolv.conf; do sleep 0.05; done`). The engine writes its
// own again on every start, so a restarted container waits again until cnmd has attached it.
import { readFile, writeFile } from 'node:fs/promises';
import { RESOLVER } from '../dns/wiring.js';

const KEPT = /^\s*(search|domain|options|sortlist)\b/;

/** The file cnmd wants, from the one the engine wrote. */
export function resolvConfFor(engine: string): string {
  const kept = engine.split('\n').filter((l) => KEPT.test(l));
  return [
    '# cnmd: the container network is ready; the resolver is cnmd at 127.0.0.11',
    ...kept,
    `nameserver ${RESOLVER}`,
    '',
  ].join('\n');
}

/** Rewrites the container's resolv.conf unless it is cnmd's already; true when it wrote. */
export async function writeResolvConf(path: string): Promise<boolean> {
  const now = await readFile(path, 'utf8');
  const want = resolvConfFor(now);
  if (now === want) return false;
  await writeFile(path, want);
  return true;
}
