import { isIP } from 'node:net';
import { DnsError } from '../errors.js';

export interface Upstream {
  host: string;
  port: number;
  /** `host:port` (`[v6]:port`): identifies the upstream in health records and cache keys. */
  key: string;
}

/** `10.0.0.2`, `10.0.0.2:5353`, `fd00::1`, `[fd00::1]:5353`. */
export function parseUpstream(text: unknown): Upstream {
  if (typeof text !== 'string') throw new DnsError('DNS_INVALID_UPSTREAM', 'an upstream must be a string');
  let host = text;
  let port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const v4port = /^([\d.]+):(\d+)$/.exec(text);
  if (bracket) [host, port] = [bracket[1]!, bracket[2] ? Number(bracket[2]) : 53];
  else if (v4port) [host, port] = [v4port[1]!, Number(v4port[2])];
  const family = isIP(host);
  if (family === 0 || !(port > 0 && port < 65536)) {
    throw new DnsError('DNS_INVALID_UPSTREAM', `${JSON.stringify(text)} is not an address or address:port`);
  }
  return { host, port, key: family === 6 ? `[${host}]:${port}` : `${host}:${port}` };
}
