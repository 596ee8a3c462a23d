import { type Cidr, familyBits } from '@cnmd/netutil';
import { IpamError } from './errors.js';
import { parseCidr } from './ip.js';
import type { Store } from './stores/types.js';

/** One entry of Docker's `default-address-pools`: `base` split into subnets of length `size`. */
export interface PoolSpec {
  base: string;
  size: number;
}

export interface IpamOptions {
  /** Where allocations live; Ipam does not close it. */
  store: Store;
  /** Pools for the local (one host) address space, tried in order; IPv4 and IPv6 alike. */
  localPools: PoolSpec[];
  /** Pools for the global (cluster) address space. */
  globalPools: PoolSpec[];
  /** Overlay VNIs, inclusive. */
  vniRange: [number, number];
  /** Service firewall marks, inclusive. */
  markRange: [number, number];
}

export function defaultOptions(): Omit<IpamOptions, 'store'> {
  const local: PoolSpec[] = [];
  for (let i = 17; i <= 31; i++) local.push({ base: `172.${i}.0.0/16`, size: 16 });
  local.push({ base: '192.168.0.0/16', size: 20 });
  // IPv6: unique local addresses (RFC 4193), a /64 per network as Docker does.
  local.push({ base: 'fdcc::/48', size: 64 });
  return {
    localPools: local,
    globalPools: [
      { base: '10.0.0.0/8', size: 24 },
      { base: 'fdcc:1::/48', size: 64 },
    ],
    vniRange: [4096, 2 ** 24 - 1],
    markRange: [256, 2 ** 20 - 1],
  };
}

export interface ParsedSpec {
  base: Cidr;
  size: number;
}

export function parseSpecs(specs: readonly PoolSpec[], what: string): ParsedSpec[] {
  if (!Array.isArray(specs)) throw new IpamError('IPAM_INVALID_OPTION', `${what} must be a list of {base, size}`);
  return specs.map((s) => {
    const base = parseCidr(s?.base);
    if (!Number.isInteger(s.size) || s.size < base.prefix || s.size > familyBits(base.family)) {
      throw new IpamError(
        'IPAM_INVALID_OPTION',
        `${what}: size ${s.size} must be between ${base.prefix} and ${familyBits(base.family)} for ${s.base}`,
      );
    }
    return { base, size: s.size };
  });
}

export function checkRange(r: [number, number], what: string, max: number): void {
  if (
    !Array.isArray(r) ||
    !Number.isInteger(r[0]) ||
    !Number.isInteger(r[1]) ||
    r[0] < 1 ||
    r[1] < r[0] ||
    r[1] > max ||
    r[1] - r[0] >= 2 ** 31
  ) {
    throw new IpamError('IPAM_INVALID_OPTION', `${what} must be [first, last] within 1..${max}`);
  }
}
