// Entering a network namespace from Node (DESIGN.md, "Entering a namespace from Node").
//
// A socket belongs to the namespace of the thread that creates it, and setns(2) moves one
// thread. So withNetns moves the main thread into the sandbox, runs a function synchronously,
// and moves it back before returning, in the same tick, as libnetwork does from a locked OS
// thread. What is safe inside the function:
// - synchronous syscalls made by the main thread: creating sockets (net/dgram handed an fd
//   from tcpListen/udpBind, a netlink socket, dgram bound to an IP literal with a synchronous
//   `lookup`), fs.*Sync on /proc/sys/net (sysctls are per namespace), statSync of the netns;
// What is not:
// - anything asynchronous: a callback, a promise continuation or a timer runs after the
//   switch back, in the original namespace; fs.promises, dns.lookup, crypto and zlib jobs run
//   on libuv threadpool threads, which never leave the original namespace;
// - spawning processes (they inherit the main thread's namespace, but `ip -n` is the tool
//   for that) and anything that might wait (the event loop is blocked while inside).
import { closeSync, constants, openSync, statfsSync } from 'node:fs';
import { SidecarError } from '../errors.js';
import { native } from './native.js';

/** include/uapi/linux/sched.h */
const CLONE_NEWNET = 0x40000000;
/** include/uapi/linux/magic.h: the filesystem of namespace files (and their bind mounts). */
const NSFS_MAGIC = 0x6e736673;

const NS_TYPES: Record<number, string> = {
  131072: 'mount',
  33554432: 'cgroup',
  67108864: 'uts',
  134217728: 'ipc',
  268435456: 'user',
  536870912: 'pid',
  128: 'time',
};

/** An open fd of a network namespace; it keeps the namespace alive until closed. */
export class NetnsHandle {
  readonly path: string;
  #fd: number;

  constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  get fd(): number {
    if (this.#fd < 0) throw new SidecarError('SIDECAR_NETNS_INVALID', `${this.path}: handle closed`);
    return this.#fd;
  }

  close(): void {
    if (this.#fd < 0) return;
    closeSync(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens a network namespace by path: a named netns (/run/netns/NAME), a Docker SandboxKey
 * (/var/run/docker/netns/ID) or /proc/PID/ns/net. Throws SIDECAR_NETNS_INVALID, with the
 * errno as cause, when the path is missing, is not a namespace (before `ip netns add` binds
 * it, /run/netns/NAME is an empty file), or is a namespace of another kind. Nothing that is
 * not on nsfs is opened (a FIFO would block the event loop, a device node would be opened as
 * root), and the open itself never blocks, should the path change in between.
 */
export function openNetns(path: string): NetnsHandle {
  let fd: number;
  try {
    if (statfsSync(path).type !== NSFS_MAGIC) {
      throw new SidecarError('SIDECAR_NETNS_INVALID', `${path}: not a namespace`);
    }
    // O_RDONLY; Node adds O_CLOEXEC to every fd it opens.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (cause) {
    if (cause instanceof SidecarError) throw cause;
    throw new SidecarError('SIDECAR_NETNS_INVALID', `${path}: cannot open (${(cause as Error).message})`, { cause });
  }
  let type: number;
  try {
    type = native().nsType(fd);
  } catch (cause) {
    closeSync(fd);
    throw new SidecarError('SIDECAR_NETNS_INVALID', `${path}: not a namespace`, { cause });
  }
  if (type !== CLONE_NEWNET) {
    closeSync(fd);
    const kind = NS_TYPES[type] ?? `0x${type.toString(16)}`;
    throw new SidecarError('SIDECAR_NETNS_INVALID', `${path}: a ${kind} namespace, not a network namespace`);
  }
  return new NetnsHandle(path, fd);
}

// The namespace the main thread started in, opened once, so that every switch returns there
// even if whatever is at a path changes. /proc/thread-self names the main thread itself.
let home: NetnsHandle | undefined;
let inside: string | undefined;
let broken: SidecarError | undefined;

function homeNetns(): NetnsHandle {
  home ??= openNetns('/proc/thread-self/ns/net');
  return home;
}

/** The path of the namespace withNetns is in right now, or undefined outside of it. */
export function currentNetns(): string | undefined {
  return inside;
}

/**
 * Runs `fn` on the main thread inside the network namespace at `netns` (a path or an open
 * handle) and returns its result; the thread is back in its original namespace when withNetns
 * returns or throws. `fn` must be synchronous (see the top of this file). Refuses to nest.
 */
export function withNetns<T>(netns: string | NetnsHandle, fn: () => T): T {
  if (broken) throw broken;
  if (inside !== undefined) {
    throw new SidecarError('SIDECAR_NETNS_NESTED', `already inside ${inside}: withNetns does not nest`);
  }
  const origin = homeNetns();
  const target = typeof netns === 'string' ? openNetns(netns) : netns;
  try {
    try {
      native().setns(target.fd);
    } catch (cause) {
      throw new SidecarError('SIDECAR_NETNS_ENTER', `cannot enter ${target.path}`, { cause });
    }
    inside = target.path;
    let result: T;
    try {
      result = fn();
    } finally {
      restore(origin);
    }
    if (typeof (result as { then?: unknown } | null)?.then === 'function') {
      // Its settling is nobody's business now; keep a rejection from becoming unhandled.
      (result as Promise<unknown>).then(undefined, () => {});
      throw new SidecarError('SIDECAR_NETNS_ASYNC', 'withNetns ran an async function: only its first tick was inside');
    }
    return result;
  } finally {
    if (target !== netns) target.close();
  }
}

function restore(origin: NetnsHandle): void {
  try {
    native().setns(origin.fd);
    inside = undefined;
  } catch (cause) {
    // Nothing can be trusted to run in the right namespace any more; every later call fails.
    broken = new SidecarError('SIDECAR_NETNS_RESTORE', `cannot return from ${inside} to the original namespace`, {
      cause,
    });
    throw broken;
  }
}
