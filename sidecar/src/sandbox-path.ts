// Naming a sandbox: a path to a network namespace (/proc/PID/ns/net, a Docker SandboxKey,
// /run/netns/NAME) or a name from `ip netns`. Two paths can name one namespace, so a sandbox
// is known by its namespace's identity (nsfs device and inode), not by the path it was given.
import { fstatSync } from 'node:fs';
import { SidecarError } from './errors.js';
import { openNetns } from './netns/netns.js';

export const NETNS_DIR = '/run/netns';

export interface SandboxRef {
  /** The path the namespace is reached by. */
  path: string;
  /** Identity of the namespace: "dev:ino". */
  key: string;
  /** The `ip netns` name, when it is one. */
  netnsName?: string;
}

/** Resolves and checks a sandbox; throws SIDECAR_NETNS_INVALID when it is not a network namespace. */
export function resolveSandbox(arg: string): SandboxRef {
  if (typeof arg !== 'string' || arg === '' || arg.includes('\0')) {
    throw new SidecarError('SIDECAR_NETNS_INVALID', 'a sandbox must be a netns path or an ip-netns name');
  }
  const named = !arg.includes('/');
  if (named && !/^[a-zA-Z0-9_.-]{1,64}$/.test(arg)) {
    throw new SidecarError('SIDECAR_NETNS_INVALID', `${JSON.stringify(arg)} is neither a path nor an ip-netns name`);
  }
  const path = named ? `${NETNS_DIR}/${arg}` : arg;
  const handle = openNetns(path);
  try {
    const st = fstatSync(handle.fd);
    const ref: SandboxRef = { path, key: `${st.dev}:${st.ino}` };
    if (path.startsWith(`${NETNS_DIR}/`)) ref.netnsName = path.slice(NETNS_DIR.length + 1);
    return ref;
  } finally {
    handle.close();
  }
}

/** The identity of the namespace at `path` now, or undefined when it is gone. */
export function sandboxKey(path: string): string | undefined {
  try {
    return resolveSandbox(path).key;
  } catch {
    return undefined;
  }
}
