// Naming a sandbox: a path to a network namespace (/proc/PID/ns/net, a Docker SandboxKey,
// /run/netns/NAME) or a name from `ip netns`. Two paths can name one namespace, so a sandbox
// is known by its namespace's identity (nsfs device and inode), not by the path it was given.
//
// A sandbox path comes from outside (the API, a container's inspect answer), and the daemon
// runs as root: only the places where namespaces live are accepted, nothing there is opened
// unless it is a namespace (openNetns checks the filesystem first and never blocks), and the
// namespace the daemon runs in and the host's own (PID 1's) are never a sandbox: attaching one
// would give the host an eth0 and replace its default route.
import { fstatSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { SidecarError } from '../errors.js';
import { openNetns } from './netns.js';

export const NETNS_DIR = '/run/netns';
/** Where the Docker engine keeps its sandboxes' namespaces (SandboxKey). */
export const DOCKER_NETNS_DIR = '/run/docker/netns';

export interface SandboxRef {
  /** The path the namespace is reached by. */
  path: string;
  /** Identity of the namespace: "dev:ino". */
  key: string;
  /** The `ip netns` name, when it is one. */
  netnsName?: string;
}

export interface SandboxPathOptions {
  /** The engine's sandbox folder as this daemon sees it (--docker-netns-dir). */
  dockerNetnsDir: string;
}

const PROC = /^\/proc\/[1-9][0-9]{0,9}\/(task\/[1-9][0-9]{0,9}\/)?ns\/net$/;
const FILE = /^[a-zA-Z0-9_.-]{1,255}$/;

let options: SandboxPathOptions = { dockerNetnsDir: DOCKER_NETNS_DIR };
let hostKeys: Set<string> | undefined;

/** Sets where sandboxes may live (the daemon's config); the defaults otherwise. */
export function configureSandboxPaths(o: Partial<SandboxPathOptions>): void {
  options = { ...options, ...o };
}

/** The namespaces that are never a sandbox: the daemon's own and the host's (PID 1's). */
function hostNamespaces(): Set<string> {
  if (!hostKeys) {
    hostKeys = new Set();
    for (const p of ['/proc/thread-self/ns/net', '/proc/1/ns/net']) {
      try {
        const st = statSync(p);
        hostKeys.add(`${st.dev}:${st.ino}`);
      } catch {} // no /proc/1 in a pid namespace without it: the daemon's own is enough
    }
  }
  return hostKeys;
}

/** The identity of the daemon's own namespace. */
export function ownNetnsKey(): string {
  const st = statSync('/proc/thread-self/ns/net');
  return `${st.dev}:${st.ino}`;
}

/** Whether `path` is in one of the folders where sandboxes live (after symlinks: /var/run is /run). */
function allowedPath(path: string): boolean {
  if (PROC.test(path)) return true;
  const name = basename(path);
  if (!FILE.test(name) || name === '.' || name === '..' || !path.startsWith('/')) return false;
  let dir: string;
  try {
    dir = realpathSync(dirname(path));
  } catch {
    return false;
  }
  return [NETNS_DIR, options.dockerNetnsDir].some((d) => {
    try {
      return realpathSync(d) === dir;
    } catch {
      return false;
    }
  });
}

/**
 * Resolves and checks a sandbox. Throws SIDECAR_NETNS_INVALID when it is not a network
 * namespace in a place where sandboxes live, SIDECAR_NETNS_HOST when it is the daemon's or the
 * host's own namespace (unless `host` allows it: `--network host` names the daemon's own).
 */
export function resolveSandbox(arg: string, opts: { host?: boolean } = {}): SandboxRef {
  if (typeof arg !== 'string' || arg === '' || arg.length > 4096 || arg.includes('\0')) {
    throw new SidecarError('SIDECAR_NETNS_INVALID', 'a sandbox must be a netns path or an ip-netns name');
  }
  const named = !arg.includes('/');
  if (named && !/^[a-zA-Z0-9_.-]{1,64}$/.test(arg)) {
    throw new SidecarError('SIDECAR_NETNS_INVALID', `${JSON.stringify(arg)} is neither a path nor an ip-netns name`);
  }
  const path = named ? `${NETNS_DIR}/${arg}` : arg;
  if (!allowedPath(path)) {
    throw new SidecarError(
      'SIDECAR_NETNS_INVALID',
      `${path}: a sandbox is /proc/PID/ns/net, /proc/PID/task/TID/ns/net, ${NETNS_DIR}/NAME or ${options.dockerNetnsDir}/ID`,
    );
  }
  const handle = openNetns(path);
  try {
    const st = fstatSync(handle.fd);
    const ref: SandboxRef = { path, key: `${st.dev}:${st.ino}` };
    if (!opts.host && hostNamespaces().has(ref.key)) {
      throw new SidecarError('SIDECAR_NETNS_HOST', `${path} is the host's own namespace (or cnmd's), not a sandbox`);
    }
    if (path.startsWith(`${NETNS_DIR}/`)) ref.netnsName = path.slice(NETNS_DIR.length + 1);
    return ref;
  } finally {
    handle.close();
  }
}

/** The identity of the namespace at `path` now, or undefined when it is gone. */
export function sandboxKey(path: string, opts: { host?: boolean } = {}): string | undefined {
  try {
    return resolveSandbox(path, opts).key;
  } catch {
    return undefined;
  }
}
