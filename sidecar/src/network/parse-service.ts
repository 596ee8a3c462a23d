// The body of a service and its parts (ports, health check), as the API, the config file and the
// Docker labels give them.
import { isIP } from 'node:net';
import { invalid } from '../errors.js';
import { object, parseDuration, parsePort, parsePublish, SERVICE_NAME, str, unknownKeys } from './parse.js';
import type { HealthSpec, Proto, Scheduler, ServicePortSpec, ServiceSpec } from './spec.js';

function duration(key: string, v: string): number {
  const ms = parseDuration(v) ?? Number.NaN;
  if (!(ms >= 10 && ms <= 3_600_000)) throw invalid(`health ${key}=${v}: a duration from 10ms to 1h (2s, 500ms)`);
  return ms;
}

/**
 * Parses `--health tcp:PORT|http:PORT[/PATH][,interval=2s][,timeout=1s][,rise=2][,fall=3]`;
 * interval 5s, timeout 1s, rise 2 and fall 3 by default.
 */
export function parseHealth(s: string): HealthSpec {
  const [head = '', ...opts] = s.split(',');
  const m = /^(tcp|http):(\d{1,5})(\/[\x21-\x7e]*)?$/.exec(head);
  const port = Number(m?.[2]);
  if (!m || !(port >= 1 && port <= 65535) || (m[1] === 'tcp' && m[3])) {
    throw invalid(
      `health ${JSON.stringify(s)}: expected tcp:PORT or http:PORT[/PATH], then ,interval=2s,timeout=1s,rise=2,fall=3`,
    );
  }
  const h: HealthSpec = { type: m[1] as HealthSpec['type'], port, intervalMs: 5000, timeoutMs: 1000, rise: 2, fall: 3 };
  if (h.type === 'http') h.path = m[3] ?? '/';
  for (const o of opts) {
    const [k, v = ''] = o.split('=', 2);
    if (k === 'interval') h.intervalMs = duration(k, v);
    else if (k === 'timeout') h.timeoutMs = duration(k, v);
    else if (k === 'rise' || k === 'fall') {
      if (!/^\d{1,3}$/.test(v) || Number(v) < 1) throw invalid(`health ${k}=${v}: a count from 1`);
      h[k] = Number(v);
    } else
      throw invalid(`health ${JSON.stringify(s)}: unknown option ${JSON.stringify(k)} (interval, timeout, rise, fall)`);
  }
  if (h.timeoutMs > h.intervalMs) throw invalid(`health ${JSON.stringify(s)}: the timeout is longer than the interval`);
  return h;
}

/** The text form of a health check, as parseHealth reads it. */
export function healthText(h: HealthSpec): string {
  return `${h.type}:${h.port}${h.path && h.path !== '/' ? h.path : ''},interval=${h.intervalMs}ms,timeout=${h.timeoutMs}ms,rise=${h.rise},fall=${h.fall}`;
}

/** Parses `[NAME=]PORT[:TARGET][/PROTO]`, e.g. `http=80/tcp`, `8080:80`, `53/udp`. */
export function parseServicePort(s: string): ServicePortSpec {
  const m = /^(?:([a-z][a-z0-9-]{0,14})=)?(\d{1,5})(?::(\d{1,5}))?(?:\/(tcp|udp))?$/.exec(s);
  const port = Number(m?.[2]);
  const target = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || !(port >= 1 && port <= 65535) || (target !== undefined && !(target >= 1 && target <= 65535))) {
    throw invalid(`port ${JSON.stringify(s)}: expected [NAME=]PORT[:TARGET][/tcp|udp]`);
  }
  const spec: ServicePortSpec = { proto: (m[4] as Proto | undefined) ?? 'tcp', port };
  if (m[1]) spec.name = m[1];
  if (target !== undefined) spec.targetPort = target;
  return spec;
}

export function parseServiceSpec(body: unknown): ServiceSpec {
  const b = object(body, 'a service');
  unknownKeys(b, ['name', 'network', 'vip', 'vip6', 'ports', 'scheduler', 'mode', 'publish', 'health'], 'a service');
  const name = str(
    b,
    'name',
    (s) => SERVICE_NAME.test(s),
    'is not a valid service name (at most 60 characters, not ending in .v6)',
  );
  if (!name) throw invalid('name is required');
  const network = str(b, 'network');
  if (!network) throw invalid('network is required');
  const scheduler = (str(b, 'scheduler') ?? 'rr') as Scheduler;
  if (!['rr', 'wrr', 'lc', 'sh'].includes(scheduler))
    throw invalid(`scheduler ${JSON.stringify(scheduler)}: rr, wrr, lc or sh`);
  const mode = (str(b, 'mode') ?? 'vip') as ServiceSpec['mode'];
  if (mode !== 'vip' && mode !== 'dnsrr') throw invalid(`mode ${JSON.stringify(mode)}: vip or dnsrr`);
  const ports = b.ports ?? [];
  if (!Array.isArray(ports)) throw invalid('ports must be a list');
  const spec: ServiceSpec = {
    name,
    network,
    scheduler,
    mode,
    ports: ports.map((p) => (typeof p === 'string' ? parseServicePort(p) : parseServicePort(portText(p)))),
  };
  const seen = new Set<string>();
  for (const p of spec.ports) {
    const k = `${p.proto}/${p.port}`;
    if (seen.has(k)) throw invalid(`port ${k} is given twice`);
    seen.add(k);
  }
  const vip = str(b, 'vip', (s) => isIP(s) === 4, 'is not an IPv4 address');
  const vip6 = str(b, 'vip6', (s) => isIP(s) === 6, 'is not an IPv6 address');
  if ((vip || vip6) && mode === 'dnsrr') throw invalid('a dnsrr service has no VIP');
  if (vip) spec.vip = vip;
  if (vip6) spec.vip6 = vip6;
  const publish = b.publish ?? [];
  if (!Array.isArray(publish)) throw invalid('publish must be a list');
  if (publish.length > 0) {
    if (mode === 'dnsrr') throw invalid('a dnsrr service has no VIP to publish: publish needs mode vip');
    spec.publish = publish.map((p) => (typeof p === 'string' ? parsePublish(p) : parsePort(p)));
    for (const p of spec.publish) {
      if (spec.ports.length > 0 && !spec.ports.some((q) => q.proto === p.proto && q.port === p.port)) {
        throw invalid(`publish ${p.hostPort}:${p.port}/${p.proto}: the service has no port ${p.port}/${p.proto}`);
      }
    }
  }
  if (b.health !== undefined && b.health !== null) {
    spec.health =
      typeof b.health === 'string' ? parseHealth(b.health) : parseHealth(healthText(healthObject(b.health)));
  }
  return spec;
}

function healthObject(v: unknown): HealthSpec {
  const h = object(v, 'health');
  unknownKeys(h, ['type', 'port', 'path', 'intervalMs', 'timeoutMs', 'rise', 'fall'], 'health');
  const num = (k: string, d: number) => {
    const n = h[k] ?? d;
    if (!Number.isInteger(n)) throw invalid(`health ${k} must be an integer`);
    return n as number;
  };
  if (h.path !== undefined && typeof h.path !== 'string') throw invalid('health path must be a string');
  return {
    type: h.type as HealthSpec['type'],
    port: num('port', 0),
    ...(h.path !== undefined ? { path: h.path as string } : {}),
    intervalMs: num('intervalMs', 5000),
    timeoutMs: num('timeoutMs', 1000),
    rise: num('rise', 2),
    fall: num('fall', 3),
  };
}

function portText(p: unknown): string {
  const b = object(p, 'a service port');
  unknownKeys(b, ['name', 'proto', 'port', 'targetPort'], 'a service port');
  return `${b.name ? `${b.name}=` : ''}${b.port}${b.targetPort ? `:${b.targetPort}` : ''}/${b.proto ?? 'tcp'}`;
}
