// The addresses and subnets that requests name, parsed by @cnmd/netutil and refused here with
// an IpamError that says what is wrong.
import {
  type Addr,
  type Cidr,
  parseCidr as cidr,
  familyBits,
  formatCidr,
  isNetwork,
  parseAddr,
  prefixMask,
} from '@cnmd/netutil';
import { IpamError } from './errors.js';

export function requireIp(s: string, what = 'address'): Addr {
  const ip = parseAddr(s);
  if (!ip) throw new IpamError('IPAM_INVALID_ADDRESS', `invalid ${what} ${JSON.stringify(s)}`);
  return ip;
}

/** Parses "a.b.c.d/n" or "x::/n"; the address must be the network address, as Docker asks. */
export function parseCidr(s: string): Cidr {
  const bad = (why: string) => new IpamError('IPAM_INVALID_CIDR', `invalid CIDR ${JSON.stringify(s)}: ${why}`);
  const c = cidr(s);
  if (c && isNetwork(c)) return c;
  if (c) throw bad(`it should be ${formatCidr({ ...c, value: c.value & prefixMask(c.family, c.prefix) })}`);
  // Why netutil refused it, in the order it reads the text.
  if (typeof s !== 'string') throw bad('not a string');
  const slash = s.indexOf('/');
  if (slash < 0) throw bad('no prefix length');
  const ip = parseAddr(s.slice(0, slash));
  if (!ip) throw bad('not an IPv4 or IPv6 address');
  throw bad(`prefix length must be 0 to ${familyBits(ip.family)}`);
}
