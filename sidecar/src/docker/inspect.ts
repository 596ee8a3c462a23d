// What the source needs of `docker inspect`: identity, names, labels, state, and where to reach
// the container's network namespace and resolv.conf from the sidecar's filesystem.
import { existsSync } from 'node:fs';
import { SidecarError } from '../errors.js';
import type { DnsSettings } from '../network/spec.js';

export interface DockerContainer {
  id: string;
  /** Without the leading `/`. */
  name: string;
  /** Only when the user set one (Docker's default is the short id). */
  hostname?: string;
  labels: Record<string, string>;
  running: boolean;
  pid: number;
  networkMode: string;
  /** The network namespace: the SandboxKey when the sidecar sees it, else /proc/PID/ns/net. */
  sandbox: string;
  /** The container's resolv.conf: the engine's file when the sidecar sees it, else through /proc/PID/root. */
  resolvConf: string;
  /** Its own DNS settings (--dns, --dns-search, --dns-option), when it has any. */
  dns?: DnsSettings;
}

interface Raw {
  Id?: string;
  Name?: string;
  Config?: { Hostname?: string; Labels?: Record<string, string> | null };
  State?: { Running?: boolean; Pid?: number };
  HostConfig?: {
    NetworkMode?: string;
    Dns?: string[] | null;
    DnsSearch?: string[] | null;
    DnsOptions?: string[] | null;
  };
  NetworkSettings?: { SandboxKey?: string };
  ResolvConfPath?: string;
}

/** Reads an inspect answer; `exists` says whether a path is visible here (tests replace it). */
export function containerOf(raw: unknown, exists: (p: string) => boolean = existsSync): DockerContainer {
  const r = raw as Raw;
  if (typeof r?.Id !== 'string' || !/^[0-9a-f]{64}$/.test(r.Id)) {
    throw new SidecarError('SIDECAR_DOCKER_API', 'an inspect answer without a container id');
  }
  const pid = r.State?.Pid ?? 0;
  const key = r.NetworkSettings?.SandboxKey;
  const c: DockerContainer = {
    id: r.Id,
    name: (r.Name ?? '').replace(/^\//, ''),
    labels: r.Config?.Labels ?? {},
    running: r.State?.Running === true && pid > 0,
    pid,
    networkMode: r.HostConfig?.NetworkMode ?? '',
    sandbox: key && exists(key) ? key : `/proc/${pid}/ns/net`,
    resolvConf: r.ResolvConfPath && exists(r.ResolvConfPath) ? r.ResolvConfPath : `/proc/${pid}/root/etc/resolv.conf`,
  };
  const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  const dns = {
    servers: list(r.HostConfig?.Dns),
    search: list(r.HostConfig?.DnsSearch),
    options: list(r.HostConfig?.DnsOptions),
  };
  if (dns.servers.length + dns.search.length + dns.options.length > 0) c.dns = dns;
  const host = r.Config?.Hostname;
  if (host && host !== r.Id.slice(0, 12)) c.hostname = host;
  return c;
}
