import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';

// resolv.conf(5) as Docker reads it for the embedded resolver's upstreams.

export interface ResolvConf {
  nameservers: string[];
  search: string[];
  options: string[];
}

export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], search: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [word, ...rest] = line.split(/\s+/);
    if (word === 'nameserver' && rest[0] && isIP(rest[0].split('%')[0]!)) out.nameservers.push(rest[0]);
    // The last search or domain line wins (resolv.conf(5)).
    else if (word === 'search' || word === 'domain') out.search = rest;
    else if (word === 'options') out.options.push(...rest);
  }
  return out;
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address === '0:0:0:0:0:0:0:1';
}

/**
 * The upstreams the embedded server forwards to: the host's nameservers less the loopback ones,
 * which mean nothing inside a container's namespace (libnetwork drops them too). Unlike
 * libnetwork, no public resolver is put in their place when none is left: forwarding then fails
 * with SERVFAIL, and nothing leaves the machine unasked.
 */
export function upstreamsFromResolvConf(text: string): string[] {
  return parseResolvConf(text).nameservers.filter((ns) => !isLoopback(ns));
}

export async function readResolvConf(path: string): Promise<string[]> {
  return upstreamsFromResolvConf(await readFile(path, 'utf8'));
}
