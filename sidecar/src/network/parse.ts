// The body of a network or an attachment, checked where it enters (the API, the config file):
// a clear error that names the field, and nothing changed.
import { isIP } from 'node:net';
import { invalid } from '../errors.js';
import type { AttachSpec, DnsSettings, NetworkSpec, PortSpec, Proto } from './spec.js';

/** Docker's rule for network and container names. */
export const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
/** A service name: a NAME that leaves room for, and cannot be, the `<name>.v6` under which the
 * load balancer keeps a service's IPv6 VIP (lb/wiring.ts). */
export const SERVICE_NAME = /^(?!.*\.v6$)[a-zA-Z0-9][a-zA-Z0-9_.-]{0,59}$/;
/** RFC 1123 labels, dots allowed: what a DNS alias may be. */
export const ALIAS =
  /^(?=.{1,253}$)([a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)*$/;
/**
 * What the kernel takes as an interface name (net/core/dev.c dev_valid_name): not . or ..; nor
 * all or default, the names of every interface's settings in /proc/sys/net/{ipv4,ipv6}/conf.
 */
const IFNAME = /^(?!(\.\.?|all|default)$)[a-zA-Z0-9_.-]{1,15}$/;

export type Body = Record<string, unknown>;

const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `500ms`, `2s`, `30m`, `12h`, `7d` in ms; undefined for anything else. */
export function parseDuration(v: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(v);
  return m ? Number(m[1]) * UNITS[m[2] as keyof typeof UNITS] : undefined;
}

export function object(body: unknown, what: string): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid(`${what} must be a JSON object`);
  return body as Body;
}

export function str(b: Body, key: string, test?: (s: string) => boolean, why = 'is not valid'): string | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') throw invalid(`${key} must be a non-empty string`);
  if (test && !test(v)) throw invalid(`${key} ${JSON.stringify(v)} ${why}`);
  return v;
}

export function bool(b: Body, key: string, dflt: boolean): boolean {
  const v = b[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw invalid(`${key} must be true or false`);
  return v;
}

export function unknownKeys(b: Body, known: readonly string[], what: string): void {
  for (const k of Object.keys(b))
    if (!known.includes(k)) throw invalid(`unknown field ${JSON.stringify(k)} in ${what}`);
}

const cidr = (s: string) => /^[0-9a-fA-F:.]+\/\d{1,3}$/.test(s);
const ip = (s: string) => isIP(s) !== 0;

export function parseNetworkSpec(body: unknown): NetworkSpec {
  const b = object(body, 'a network');
  unknownKeys(
    b,
    [
      'name',
      'driver',
      'subnet',
      'gateway',
      'ipRange',
      'ipv6',
      'subnet6',
      'gateway6',
      'internal',
      'mtu',
      'icc',
      'options',
      'scope',
    ],
    'a network',
  );
  const name = str(b, 'name', (s) => NAME.test(s), 'is not a valid name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 63)');
  if (!name) throw invalid('name is required');
  // Which drivers exist, and what options each takes, the controller's Drivers say.
  const driver = str(b, 'driver', (s) => /^[a-z][a-z0-9_-]{0,31}$/.test(s), 'is not a driver name') ?? 'bridge';
  const mtu = b.mtu ?? 1500;
  if (!Number.isInteger(mtu) || (mtu as number) < 68 || (mtu as number) > 65535) throw invalid('mtu must be 68..65535');
  const options = object(b.options ?? {}, 'options');
  for (const [k, v] of Object.entries(options)) {
    if (typeof v !== 'string') throw invalid(`option ${k} must be a string`);
  }
  const spec: NetworkSpec = {
    name,
    driver,
    ipv6: bool(b, 'ipv6', false),
    internal: bool(b, 'internal', false),
    icc: bool(b, 'icc', true),
    mtu: mtu as number,
    options: options as Record<string, string>,
  };
  const subnet = str(b, 'subnet', cidr, 'is not a CIDR');
  const gateway = str(b, 'gateway', ip, 'is not an address');
  const ipRange = str(b, 'ipRange', cidr, 'is not a CIDR');
  const subnet6 = str(b, 'subnet6', cidr, 'is not a CIDR');
  const gateway6 = str(b, 'gateway6', ip, 'is not an address');
  if (subnet) spec.subnet = subnet;
  if (gateway) spec.gateway = gateway;
  if (ipRange) spec.ipRange = ipRange;
  if (subnet6) spec.subnet6 = subnet6;
  if (gateway6) spec.gateway6 = gateway6;
  if ((subnet6 || gateway6) && !spec.ipv6) throw invalid('subnet6 and gateway6 need ipv6: true');
  const scope = str(b, 'scope', (s) => s === 'local' || s === 'global', 'is not local or global');
  if (scope) spec.scope = scope as 'local' | 'global';
  if ((gateway || ipRange) && !subnet) throw invalid('gateway and ipRange need a subnet');
  return spec;
}

/** Parses Docker's -p syntax: [HOSTIP:]HOSTPORT:PORT[/PROTO]. */
export function parsePublish(s: string): PortSpec {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/.exec(s);
  const hostPort = Number(m?.[2]);
  const port = Number(m?.[3]);
  // The host address is checked here too: nft would refuse 999.1.1.1 only after an attach took
  // its address and wrote its record.
  const hostIp = m?.[1]?.replace(/^\[|\]$/g, '');
  if (!m || !(hostPort >= 1 && hostPort <= 65535 && port >= 1 && port <= 65535) || (hostIp && !isIP(hostIp))) {
    throw invalid(`publish ${JSON.stringify(s)}: expected [HOSTIP:]HOSTPORT:PORT[/tcp|udp]`);
  }
  const spec: PortSpec = { hostPort, port, proto: (m[4] as Proto | undefined) ?? 'tcp' };
  if (hostIp) spec.hostIp = hostIp;
  return spec;
}

export function parseAttachSpec(body: unknown): AttachSpec {
  const b = object(body, 'an attachment');
  unknownKeys(
    b,
    [
      'sandbox',
      'network',
      'name',
      'aliases',
      'hostname',
      'ip',
      'ip6',
      'mac',
      'ifname',
      'publish',
      'service',
      'weight',
      'defaultRoute',
      'dns',
      'dnsSearch',
      'dnsOptions',
    ],
    'an attachment',
  );
  const sandbox = str(b, 'sandbox', (s) => s.length <= 4096 && !s.includes('\0'));
  if (!sandbox) throw invalid('sandbox is required (a netns path or an ip-netns name)');
  const network = str(b, 'network');
  if (!network) throw invalid('network is required');
  const aliases = b.aliases ?? [];
  if (!Array.isArray(aliases) || !aliases.every((a) => typeof a === 'string' && ALIAS.test(a))) {
    throw invalid('aliases must be DNS names');
  }
  const publish = b.publish ?? [];
  if (!Array.isArray(publish)) throw invalid('publish must be a list');
  const spec: AttachSpec = {
    sandbox,
    network,
    aliases: [...new Set(aliases as string[])],
    publish: publish.map((p) => (typeof p === 'string' ? parsePublish(p) : parsePort(p))),
  };
  const name = str(b, 'name', (s) => NAME.test(s), 'is not a valid container name');
  const hostname = str(b, 'hostname', (s) => ALIAS.test(s), 'is not a valid hostname');
  const ip4 = str(b, 'ip', (s) => isIP(s) === 4, 'is not an IPv4 address');
  const ip6 = str(b, 'ip6', (s) => isIP(s) === 6, 'is not an IPv6 address');
  const mac = str(b, 'mac', (s) => /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s), 'is not a MAC address');
  const ifname = str(
    b,
    'ifname',
    (s) => IFNAME.test(s),
    'is not an interface name (at most 15 characters; not all or default)',
  );
  if (bool(b, 'defaultRoute', false)) spec.defaultRoute = true;
  const service = str(b, 'service', (s) => SERVICE_NAME.test(s), 'is not a valid service name');
  if (service) spec.service = service;
  if (b.weight !== undefined) {
    if (!Number.isInteger(b.weight) || (b.weight as number) < 0 || (b.weight as number) > 65535) {
      throw invalid('weight must be 0..65535');
    }
    if (!service) throw invalid('weight needs a service');
    spec.weight = b.weight as number;
  }
  const dns = parseDnsSettings(b);
  if (dns) spec.dns = dns;
  if (name) spec.name = name;
  if (hostname) spec.hostname = hostname;
  if (ip4) spec.ip = ip4;
  if (ip6) spec.ip6 = ip6;
  if (mac) spec.mac = mac;
  if (ifname) spec.ifname = ifname;
  return spec;
}

/** A resolv.conf option: `name` or `name:N` (ndots:2, timeout:1, attempts:3, rotate, edns0, use-vc). */
const DNS_OPTION = /^[a-z][a-z0-9-]{0,31}(:\d{1,4})?$/;

function strings(b: Body, key: string, ok: (s: string) => boolean, what: string): string[] {
  const v = b[key] ?? [];
  if (!Array.isArray(v) || v.length > 32 || !v.every((x) => typeof x === 'string' && ok(x))) {
    throw invalid(`${key} must be a list of at most 32 ${what}`);
  }
  return [...new Set(v as string[])];
}

/** dns, dnsSearch, dnsOptions of an attachment; undefined when none is given. */
function parseDnsSettings(b: Body): DnsSettings | undefined {
  if (b.dns === undefined && b.dnsSearch === undefined && b.dnsOptions === undefined) return undefined;
  return {
    servers: strings(b, 'dns', ip, 'IP addresses'),
    search: strings(b, 'dnsSearch', (s) => ALIAS.test(s), 'domain names'),
    options: strings(b, 'dnsOptions', (s) => DNS_OPTION.test(s), 'resolv.conf options (ndots:2, edns0)'),
  };
}

export function parsePort(p: unknown): PortSpec {
  const b = object(p, 'a published port');
  unknownKeys(b, ['hostPort', 'port', 'proto', 'hostIp'], 'a published port');
  const text = `${b.hostIp ? `${b.hostIp}:` : ''}${b.hostPort}:${b.port}/${b.proto ?? 'tcp'}`;
  return parsePublish(
    typeof b.hostIp === 'string' && b.hostIp.includes(':') ? text.replace(b.hostIp, `[${b.hostIp}]`) : text,
  );
}
