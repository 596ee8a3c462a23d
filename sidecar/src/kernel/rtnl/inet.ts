// The IP literals, prefixes and MACs the kernel layer takes, as the bytes netlink carries
// (@cnmd/netutil), refused with SIDECAR_INVALID_ARGUMENT before anything is sent.
import net from 'node:net';
import { addrBytes, macBytes as mac, parseAddr } from '@cnmd/netutil';
import { SidecarError } from '../../errors.js';

export interface Prefix {
  family: 4 | 6;
  /** The address as written (an interface address keeps its host bits: 10.0.0.2/24). */
  address: string;
  bytes: Buffer;
  length: number;
}

function invalid(what: string, s: string): SidecarError {
  return new SidecarError('SIDECAR_INVALID_ARGUMENT', `not ${what}: ${JSON.stringify(s)}`);
}

/** In network order: 4 bytes or 16. An IPv6 zone (fe80::1%eth0) is dropped: netlink names the
 * link apart. */
export function ipBytes(s: string): Buffer {
  const a = parseAddr(net.isIPv6(s) ? s.replace(/%.*$/, '') : s);
  if (!a) throw invalid('an IP address', s);
  return addrBytes(a);
}

/** "10.0.0.2/24", "fd00::2/64"; a bare address is a host prefix (/32, /128). */
export function parsePrefix(s: string): Prefix {
  const [address = '', len, extra] = s.split('/');
  const family = net.isIP(address);
  if ((family !== 4 && family !== 6) || extra !== undefined) throw invalid('a CIDR', s);
  const max = family === 4 ? 32 : 128;
  const length = len === undefined ? max : Number(len);
  if (!/^\d+$/.test(len ?? `${max}`) || length > max) throw invalid('a CIDR', s);
  return { family, address, bytes: ipBytes(address), length };
}

export function macBytes(s: string): Buffer {
  const b = mac(s);
  if (!b) throw invalid('a MAC address', s);
  return b;
}
