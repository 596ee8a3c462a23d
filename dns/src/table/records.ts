import { addressBytes, checkName, formatAddress, lower, ptrName } from '../dns-name.js';
import { DnsError } from '../errors.js';
import type {
  Address,
  EndpointRecord,
  EndpointSpec,
  ServicePort,
  ServiceRecord,
  ServiceSpec,
  TaskRecord,
} from './types.js';

// Validation and normalisation of what the sidecar hands the table: a bad spec throws here,
// before anything in the table changes.

export function checkNetwork(network: unknown): string {
  if (typeof network !== 'string' || network.length === 0 || network.length > 255) {
    throw new DnsError('DNS_INVALID_RECORD', `network must be a non-empty string, got ${JSON.stringify(network)}`);
  }
  return network;
}

function addresses(list: unknown, what: string): Address[] {
  if (!Array.isArray(list)) throw new DnsError('DNS_INVALID_RECORD', `${what} must be a list of addresses`);
  const seen = new Map<string, Address>();
  for (const a of list) {
    const bytes = addressBytes(a);
    const text = formatAddress(bytes);
    if (!seen.has(text)) seen.set(text, { text, bytes });
  }
  return [...seen.values()];
}

function names(list: unknown, what: string): string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new DnsError('DNS_INVALID_RECORD', `${what} must be a list of names`);
  return list.map((n) => checkName(n, what));
}

export function endpointRecord(spec: EndpointSpec): EndpointRecord {
  const network = checkNetwork(spec?.network);
  if (typeof spec.id !== 'string' || spec.id.length === 0) {
    throw new DnsError('DNS_INVALID_RECORD', 'an endpoint needs an id');
  }
  const name = spec.name === undefined ? undefined : checkName(spec.name, 'name');
  const aliases = names(spec.aliases, 'aliases');
  const hostname = spec.hostname === undefined ? undefined : checkName(spec.hostname, 'hostname');
  const addrs = addresses(spec.addresses, 'addresses');
  const keys = new Set<string>();
  for (const n of [name, ...aliases, hostname]) if (n) keys.add(lower(n));
  // Docker resolves a container's short id (the first 12 hex digits of its id) too.
  if (/^[0-9a-f]{12,}$/i.test(spec.id)) keys.add(spec.id.slice(0, 12).toLowerCase());
  return {
    network,
    id: spec.id,
    // libnetwork: an anonymous endpoint answers PTR queries with its first alias.
    ptrName: name ?? aliases[0],
    addresses: addrs,
    keys: [...keys],
    ptrKeys: addrs.map((a) => ptrName(a.bytes)),
  };
}

function ports(list: unknown): ServicePort[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new DnsError('DNS_INVALID_RECORD', 'ports must be a list');
  return list.map((p: ServicePort) => {
    const ok =
      /^[A-Za-z0-9-]{1,62}$/.test(p?.name) &&
      (p.protocol === 'tcp' || p.protocol === 'udp') &&
      Number.isInteger(p.port) &&
      p.port > 0 &&
      p.port < 65536;
    if (!ok) throw new DnsError('DNS_INVALID_RECORD', `bad service port ${JSON.stringify(p)}`);
    return { name: p.name, protocol: p.protocol, port: p.port };
  });
}

function tasks(list: unknown): TaskRecord[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new DnsError('DNS_INVALID_RECORD', 'tasks must be a list');
  const out: TaskRecord[] = [];
  for (const t of list) {
    const name = checkName(t?.name, 'task name');
    const addrs = addresses(t.addresses, 'task addresses');
    if (t.ready !== false) out.push({ name, addresses: addrs });
  }
  return out;
}

export function serviceRecord(spec: ServiceSpec): ServiceRecord {
  const network = checkNetwork(spec?.network);
  const name = checkName(spec.name, 'service name');
  const vips = addresses(spec.vips ?? [], 'vips');
  const mode = spec.mode ?? (vips.length > 0 ? 'vip' : 'dnsrr');
  if (mode !== 'vip' && mode !== 'dnsrr') throw new DnsError('DNS_INVALID_RECORD', `unknown mode ${String(mode)}`);
  if (mode === 'vip' && vips.length === 0) throw new DnsError('DNS_INVALID_RECORD', 'a vip service needs vips');
  const keys = new Set([name, ...names(spec.aliases, 'service aliases')].map(lower));
  return { network, name, mode, vips, ports: ports(spec.ports), tasks: tasks(spec.tasks), keys: [...keys] };
}
