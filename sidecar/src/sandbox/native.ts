// Loads the addon of ../../native (built by node-gyp when `npm ci` runs the package's install
// script). The same module runs from src/ under vitest and from dist/src/ once built, so the
// addon is looked for at both depths.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { SidecarError } from '../errors.js';

export interface NativeNetns {
  /** setns(fd, CLONE_NEWNET) for the calling (main) thread. */
  setns(fd: number): void;
  /** ioctl(fd, NS_GET_NSTYPE): the CLONE_NEW* flag of a namespace fd; throws ENOTTY otherwise. */
  nsType(fd: number): number;
  /** A listening TCP socket (backlog 511) of the current namespace, non-blocking; its fd. */
  tcpListen(address: string, port: number): number;
  /** A bound UDP socket of the current namespace, non-blocking; its fd. */
  udpBind(address: string, port: number): number;
  /** An unconnected TCP socket (family 4 or 6) of the current namespace, non-blocking; its fd. */
  tcpSocket(family: 4 | 6): number;
  /** Runs an nft script (one transaction) in the current namespace with libnftables; throws nft's error. */
  nftRun(script: string): void;
}

const candidates = ['../../native/build/Release/cnmd_netns.node', '../../../native/build/Release/cnmd_netns.node'];

let loaded: NativeNetns | undefined;

export function native(): NativeNetns {
  if (loaded) return loaded;
  const file = candidates.map((c) => fileURLToPath(new URL(c, import.meta.url))).find((f) => existsSync(f));
  if (!file) {
    throw new SidecarError(
      'SIDECAR_NATIVE_MISSING',
      'the netns addon is not built (sidecar/native/build): run `npm ci` or `npm run install -w @cnmd/sidecar`',
    );
  }
  loaded = createRequire(import.meta.url)(file) as NativeNetns;
  return loaded;
}
