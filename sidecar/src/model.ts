// What the admin API and the CLI speak: networks, attachments and their validation. Input
// from outside is checked here, where it enters, with a clear error that names the field.
import { isIP } from 'node:net';
import { invalid } from './api/errors.js';

export type Driver = 'bridge' | 'macvlan';
export type Proto = 'tcp' | 'udp';

export interface NetworkSpec {
  name: string;
  driver: Driver;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  ipv6: boolean;
  subnet6?: string;
  gateway6?: string;
  /** No traffic leaves the network; no forwarding of DNS. */
  internal: boolean;
  mtu: number;
  /** Inter-container communication on the network. */
  icc: boolean;
  /** Driver options: `parent` for macvlan. */
  options: Record<string, string>;
}

export interface PortSpec {
  hostPort: number;
  port: number;
  proto: Proto;
  /** Host address to publish on; all when absent. */
  hostIp?: string;
}

export interface AttachSpec {
  /** A netns path (/proc/PID/ns/net, a Docker SandboxKey) or a name under /run/netns. */
  sandbox: string;
  network: string;
  name?: string;
  aliases: string[];
  hostname?: string;
  ip?: string;
  ip6?: string;
  mac?: string;
  /** Interface name inside the sandbox; eth0, eth1… by default. */
  ifname?: string;
  publish: PortSpec[];
  /** This network's gateway becomes the sandbox's default route even if another gave one. */
  defaultRoute?: boolean;
  /** The endpoint is a task of this service (on the same network). */
  service?: string;
  /** Its weight in the service (wrr); 1 by default, 0 to drain. */
  weight?: number;
  /** A source's own id of the container (Docker's, 64 hex digits); not from the API. */
  containerId?: string;
  /** Which source made the endpoint, so that it alone reconciles it; not from the API. */
  origin?: 'docker';
}

export type Scheduler = 'rr' | 'wrr' | 'lc' | 'sh';

export interface ServicePortSpec {
  /** Names the port for SRV answers: _<name>._<proto>.<service>. */
  name?: string;
  proto: Proto;
  port: number;
  /** The port on the tasks; `port` when absent. */
  targetPort?: number;
}

export interface ServiceSpec {
  name: string;
  network: string;
  /** The VIP (vip mode); the next free address of the network when absent. */
  vip?: string;
  /** Balanced ports; none: every port of the VIP. */
  ports: ServicePortSpec[];
  scheduler: Scheduler;
  /** vip: the name answers a virtual IP balanced over the tasks; dnsrr: the tasks' addresses. */
  mode: 'vip' | 'dnsrr';
  /** vip mode on a dual-stack network: the IPv6 VIP; the next free one of the network when absent. */
  vip6?: string;
  /** Host ports to VIP ports (Docker's ingress on one host); vip mode only. */
  publish?: PortSpec[];
  /** Off when absent: every task is in the rotation while attached. */
  health?: HealthSpec;
}

/** A health check of a service's tasks, probed from the network's load-balancer sandbox. */
export interface HealthSpec {
  type: 'tcp' | 'http';
  port: number;
  /** http only: the path of the GET; a status below 400 is healthy. */
  path?: string;
  intervalMs: number;
  timeoutMs: number;
  /** Successes in a row that bring an unhealthy task back. */
  rise: number;
  /** Failures in a row that take a task out. */
  fall: number;
}

/** Docker's rule for network and container names. */
export const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
/** A service name: a NAME that leaves room for, and cannot be, the `<name>.v6` under which the
 * load balancer keeps a service's IPv6 VIP (lb-wiring.ts). */
export const SERVICE_NAME = /^(?!.*\.v6$)[a-zA-Z0-9][a-zA-Z0-9_.-]{0,59}$/;
/** RFC 1123 labels, dots allowed: what a DNS alias may be. */
export const ALIAS =
  /^(?=.{1,253}$)([a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)*$/;
const IFNAME = /^[a-zA-Z0-9_.-]{1,15}$/;

type Body = Record<string, unknown>;

function object(body: unknown, what: string): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid(`${what} must be a JSON object`);
  return body as Body;
}

function str(b: Body, key: string, test?: (s: string) => boolean, why = 'is not valid'): string | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') throw invalid(`${key} must be a non-empty string`);
  if (test && !test(v)) throw invalid(`${key} ${JSON.stringify(v)} ${why}`);
  return v;
}

function bool(b: Body, key: string, dflt: boolean): boolean {
  const v = b[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw invalid(`${key} must be true or false`);
  return v;
}

function unknownKeys(b: Body, known: readonly string[], what: string): void {
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
    ],
    'a network',
  );
  const name = str(b, 'name', (s) => NAME.test(s), 'is not a valid name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 63)');
  if (!name) throw invalid('name is required');
  const driver = (str(b, 'driver') ?? 'bridge') as Driver;
  if (driver !== 'bridge' && driver !== 'macvlan') throw invalid(`driver ${JSON.stringify(driver)}: bridge or macvlan`);
  const mtu = b.mtu ?? 1500;
  if (!Number.isInteger(mtu) || (mtu as number) < 68 || (mtu as number) > 65535) throw invalid('mtu must be 68..65535');
  const options = object(b.options ?? {}, 'options');
  for (const [k, v] of Object.entries(options)) {
    if (typeof v !== 'string') throw invalid(`option ${k} must be a string`);
  }
  if (driver === 'macvlan' && !options.parent) throw invalid('a macvlan network needs the option parent=<interface>');
  if (options.parent !== undefined && !IFNAME.test(options.parent as string))
    throw invalid('parent is not an interface name');
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
  if ((gateway || ipRange) && !subnet) throw invalid('gateway and ipRange need a subnet');
  return spec;
}

/** Parses Docker's -p syntax: [HOSTIP:]HOSTPORT:PORT[/PROTO]. */
export function parsePublish(s: string): PortSpec {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/.exec(s);
  const hostPort = Number(m?.[2]);
  const port = Number(m?.[3]);
  if (!m || !(hostPort >= 1 && hostPort <= 65535 && port >= 1 && port <= 65535)) {
    throw invalid(`publish ${JSON.stringify(s)}: expected [HOSTIP:]HOSTPORT:PORT[/tcp|udp]`);
  }
  const spec: PortSpec = { hostPort, port, proto: (m[4] as Proto | undefined) ?? 'tcp' };
  if (m[1]) spec.hostIp = m[1].replace(/^\[|\]$/g, '');
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
  const ifname = str(b, 'ifname', (s) => IFNAME.test(s), 'is not an interface name (at most 15 characters)');
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
  if (name) spec.name = name;
  if (hostname) spec.hostname = hostname;
  if (ip4) spec.ip = ip4;
  if (ip6) spec.ip6 = ip6;
  if (mac) spec.mac = mac;
  if (ifname) spec.ifname = ifname;
  return spec;
}

function parsePort(p: unknown): PortSpec {
  const b = object(p, 'a published port');
  unknownKeys(b, ['hostPort', 'port', 'proto', 'hostIp'], 'a published port');
  const text = `${b.hostIp ? `${b.hostIp}:` : ''}${b.hostPort}:${b.port}/${b.proto ?? 'tcp'}`;
  return parsePublish(
    typeof b.hostIp === 'string' && b.hostIp.includes(':') ? text.replace(b.hostIp, `[${b.hostIp}]`) : text,
  );
}

export interface NetworkInfo extends NetworkSpec {
  id: string;
  /** The bridge (or macvlan parent) on the host. */
  device: string;
  subnet: string;
  gateway?: string;
  created: string;
  endpoints: number;
}

export interface EndpointInfo {
  id: string;
  sandbox: string;
  network: string;
  name?: string;
  aliases: string[];
  ifname: string;
  mac: string;
  ip: string;
  ip6?: string;
  publish: PortSpec[];
  /** failed: a restart could not bring it back (error says why); detach removes what is left. */
  status: 'ready' | 'failed';
  error?: { code: string; message: string };
}

/** What the daemon does; the API and the CLI are its two faces. */
export interface Controller {
  createNetwork(spec: NetworkSpec): Promise<NetworkInfo>;
  listNetworks(): NetworkInfo[];
  inspectNetwork(name: string): NetworkInfo;
  removeNetwork(name: string): Promise<void>;
  attach(spec: AttachSpec): Promise<EndpointInfo>;
  /** Detaches a sandbox from one network, or from all; returns what was detached. */
  detach(sandbox: string, network?: string): Promise<EndpointInfo[]>;
  listEndpoints(): EndpointInfo[];
  /** The endpoints of a container, by name or sandbox. */
  inspectContainer(nameOrSandbox: string): EndpointInfo[];
  createService(spec: ServiceSpec): Promise<ServiceInfo>;
  listServices(): ServiceInfo[];
  inspectService(name: string, network?: string): ServiceInfo;
  removeService(name: string, network?: string): Promise<void>;
}

export interface ServiceInfo extends ServiceSpec {
  id: string;
  vip?: string;
  vip6?: string;
  mark?: number;
  backends: {
    name?: string;
    address: string;
    address6?: string;
    weight: number;
    /** With a health check only. */
    health?: 'healthy' | 'unhealthy';
  }[];
}

const DURATION = /^(\d+)(ms|s|m)$/;

function duration(key: string, v: string): number {
  const m = DURATION.exec(v);
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'] : Number.NaN;
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
