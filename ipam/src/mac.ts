import { randomFillSync } from 'node:crypto';
import { IpamError } from './errors.js';

export type MacStrategy = 'ip-derived' | 'random';

/** 02:42 followed by the IPv4 address, as Docker does (overlays rely on it). */
export function ipDerivedMac(ip4: number): string {
  return `02:42:${hex(ip4 >>> 24)}:${hex((ip4 >>> 16) & 255)}:${hex((ip4 >>> 8) & 255)}:${hex(ip4 & 255)}`;
}

const random = Buffer.alloc(6 * 256);
let randomAt = random.length;

/** A random MAC: locally administered (bit 1 of the first octet set), unicast (bit 0 clear). */
export function randomMac(): number {
  if (randomAt === random.length) {
    randomFillSync(random);
    randomAt = 0;
  }
  const first = (random[randomAt]! & 0xfc) | 0x02;
  const rest = random.readUIntBE(randomAt + 1, 5);
  randomAt += 6;
  return first * 2 ** 40 + rest;
}

export function formatMac(mac: number): string {
  const out: string[] = [];
  for (let i = 5; i >= 0; i--) out.push(hex(Math.floor(mac / 2 ** (8 * i)) & 255));
  return out.join(':');
}

/** Parses aa:bb:cc:dd:ee:ff (or with '-'); a MAC given for an endpoint must be unicast. */
export function parseMac(s: string): number {
  if (typeof s !== 'string' || !/^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(s)) {
    throw new IpamError('IPAM_INVALID_MAC', `invalid MAC address ${JSON.stringify(s)}`);
  }
  const mac = Number.parseInt(s.replace(/[:-]/g, ''), 16);
  if (Math.floor(mac / 2 ** 40) & 1) {
    throw new IpamError('IPAM_INVALID_MAC', `${s} is a multicast address; an endpoint needs a unicast one`);
  }
  return mac;
}

function hex(n: number): string {
  return n < 16 ? `0${n.toString(16)}` : n.toString(16);
}
