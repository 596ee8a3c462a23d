// Argument checks and the sysctl both backends share. A bad argument is refused before
// anything is sent (SIDECAR_INVALID_ARGUMENT), so a failed call changes nothing.
import { writeFileSync } from 'node:fs';
import { SidecarError } from '../errors.js';
import { openNetns, withNetns } from '../sandbox/netns.js';
import { ipBytes, macBytes } from './rtnl/inet.js';

/** include/uapi/linux/if.h: IFNAMSIZ 16 with the NUL; net/core/dev.c dev_valid_name() refuses '/', ':' and spaces. */
export function checkName(name: string): string {
  if (!/^[^\s/:]{1,15}$/.test(name) || name === '.' || name === '..') {
    throw new SidecarError('SIDECAR_INVALID_ARGUMENT', `not a link name: ${JSON.stringify(name)}`);
  }
  return name;
}

export function checkMac(mac: string): string {
  macBytes(mac);
  return mac;
}

export function checkIp(ip: string): string {
  ipBytes(ip);
  return ip;
}

/** A namespace path another process will open: refused here with SIDECAR_NETNS_INVALID. */
export function checkNetns(path: string): string {
  openNetns(path).close();
  return path;
}

export function checkMtu(mtu: number | undefined): void {
  if (mtu !== undefined && !(Number.isInteger(mtu) && mtu >= 68 && mtu <= 65535)) {
    throw new SidecarError('SIDECAR_INVALID_ARGUMENT', `not an MTU: ${mtu}`);
  }
}

export function checkVni(vni: number): void {
  if (!(Number.isInteger(vni) && vni >= 0 && vni < 2 ** 24)) {
    throw new SidecarError('SIDECAR_INVALID_ARGUMENT', `not a VXLAN VNI (24 bits): ${vni}`);
  }
}

/**
 * Writes net.ipv4.conf.<link>.<key> of a namespace. /proc/sys/net shows the namespace of the
 * thread that opens the file, so the write is made inside it (withNetns: a synchronous open,
 * write and close of the main thread).
 */
export function writeIpv4Conf(netns: string | undefined, link: string, key: string, value: string): void {
  const file = `/proc/sys/net/ipv4/conf/${checkName(link)}/${key}`;
  const write = () => writeFileSync(file, value);
  try {
    netns === undefined ? write() : withNetns(netns, write);
  } catch (cause) {
    if (cause instanceof SidecarError && cause.code !== 'SIDECAR_SYSCTL') throw cause;
    const code = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'SIDECAR_LINK_NOT_FOUND' : 'SIDECAR_SYSCTL';
    throw new SidecarError(code, `cannot write ${file} in ${netns ?? 'this namespace'}`, { cause });
  }
}
