// A service on one network, as the caller describes it (plain input, validated here where it
// enters: a bad one gets a clear error code and changes nothing), and its mapping to the
// data planes' VirtualService. Docker's model: a service has a VIP from its network's subnet
// (endpoint mode "vip") or none (mode "dnsrr": DNS answers with the tasks, nothing to balance).
import { type Cidr, contains, type Family } from '@cnmd/netutil';
import { invalid, LbError } from './errors.js';
import { canonical, isNetworkAddress, parseAddr, parseCidr } from './ip.js';
import type { Backend, Proto, Scheduler, ServicePort, VirtualService } from './types.js';

export type EndpointMode = 'vip' | 'dnsrr';

export interface NetworkRef {
  name: string;
  /** The network's subnets ("10.0.1.0/24", "fd00:1::/64"): VIPs and backends must be inside. */
  subnets: string[];
}

export interface PortSpec {
  /** tcp by default. */
  proto?: Proto;
  port: number;
  targetPort?: number;
}

export interface BackendSpec {
  address: string;
  /** 1 by default; 0 keeps the backend out of new connections. */
  weight?: number;
  /** The network the backend's address is on, when the caller knows it: it must be the service's. */
  network?: string;
}

export interface HealthCheckSpec {
  type: 'tcp' | 'http';
  /** The backend port probed; the first port's target port when absent. */
  port?: number;
  /** HTTP only; "/" by default. A status below 400 is healthy. */
  path?: string;
  intervalMs?: number;
  timeoutMs?: number;
  /** Consecutive successes that bring an unhealthy backend back; 2 by default. */
  healthyThreshold?: number;
  /** Consecutive failures that take a backend out of the rotation; 3 by default. */
  unhealthyThreshold?: number;
}

export interface ServiceSpec {
  name: string;
  network: NetworkRef;
  /** Required in endpoint mode "vip", refused in "dnsrr". */
  vip?: string;
  /** The ports balanced, or 'all' (the default: every port of the VIP, as a fwmark service does). */
  ports?: PortSpec[] | 'all';
  scheduler?: Scheduler;
  endpointMode?: EndpointMode;
  backends?: BackendSpec[];
  /** The firewall mark (>= 256); the load balancer picks the lowest free one when absent. */
  mark?: number;
  /** Off when absent. */
  health?: HealthCheckSpec;
}

export type HealthCheck = Required<HealthCheckSpec>;

/** A validated service: addresses in canonical text, defaults filled in. */
export interface Service {
  name: string;
  network: NetworkRef;
  endpointMode: EndpointMode;
  vip?: string;
  family?: Family;
  /** Empty: every port. */
  ports: ServicePort[];
  scheduler: Scheduler;
  backends: Backend[];
  mark?: number;
  health?: HealthCheck;
}

export const SCHEDULERS: readonly Scheduler[] = ['rr', 'wrr', 'lc', 'sh'];
export const MIN_MARK = 256;
export const MAX_WEIGHT = 65535;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

export function validateService(input: unknown): Service {
  if (!isObject(input)) throw invalid('a service must be an object');
  const name = input.name;
  if (typeof name !== 'string' || !NAME.test(name)) throw invalid(`bad service name ${JSON.stringify(name)}`);
  const network = validateNetwork(input.network);
  const scheduler = input.scheduler ?? 'rr';
  if (!SCHEDULERS.includes(scheduler as Scheduler)) {
    throw new LbError('LB_INVALID_SCHEDULER', `unknown scheduler ${JSON.stringify(scheduler)} (rr, wrr, lc or sh)`);
  }
  const endpointMode = input.endpointMode ?? 'vip';
  if (endpointMode !== 'vip' && endpointMode !== 'dnsrr') throw invalid(`bad endpoint mode ${String(endpointMode)}`);
  const svc: Service = {
    name,
    network: network.ref,
    endpointMode,
    ports: [],
    scheduler: scheduler as Scheduler,
    backends: [],
  };
  if (endpointMode === 'vip') {
    const vip = parseAddr(input.vip);
    if (!vip) throw invalid(`service ${name}: bad VIP ${JSON.stringify(input.vip)}`);
    const home = network.cidrs.find((c) => contains(c, vip));
    if (!home || isNetworkAddress(home, vip)) {
      throw new LbError('LB_VIP_OUT_OF_SUBNET', `VIP ${input.vip} is not in a subnet of network ${network.ref.name}`);
    }
    svc.vip = canonical(input.vip)!;
    svc.family = vip.family;
  } else if (input.vip !== undefined) {
    throw invalid(`service ${name}: endpoint mode dnsrr has no VIP`);
  }
  svc.ports = validatePorts(name, input.ports);
  if (input.mark !== undefined) {
    if (!Number.isInteger(input.mark) || (input.mark as number) < MIN_MARK || (input.mark as number) > 0xffffffff) {
      throw invalid(`service ${name}: a mark is an integer from ${MIN_MARK}`);
    }
    svc.mark = input.mark as number;
  }
  if (input.backends !== undefined) {
    if (!Array.isArray(input.backends)) throw invalid(`service ${name}: backends must be a list`);
    svc.backends = validateBackends(svc, input.backends);
  }
  if (input.health !== undefined) svc.health = validateHealth(svc, input.health);
  return svc;
}

function validateNetwork(v: unknown): { ref: NetworkRef; cidrs: Cidr[] } {
  if (!isObject(v) || typeof v.name !== 'string' || v.name === '' || !Array.isArray(v.subnets)) {
    throw invalid('a service needs its network: { name, subnets }');
  }
  const cidrs: Cidr[] = [];
  for (const s of v.subnets) {
    const c = parseCidr(s);
    if (!c) throw invalid(`network ${v.name}: bad subnet ${JSON.stringify(s)}`);
    cidrs.push(c);
  }
  return { ref: { name: v.name, subnets: [...(v.subnets as string[])] }, cidrs };
}

function validatePorts(name: string, v: unknown): ServicePort[] {
  if (v === undefined || v === 'all') return [];
  if (!Array.isArray(v) || v.length === 0) throw invalid(`service ${name}: ports must be 'all' or a non-empty list`);
  const seen = new Set<string>();
  return v.map((p): ServicePort => {
    if (!isObject(p)) throw invalid(`service ${name}: a port must be { proto, port, targetPort }`);
    const proto = p.proto ?? 'tcp';
    if (proto !== 'tcp' && proto !== 'udp') throw invalid(`service ${name}: bad protocol ${String(proto)}`);
    if (!isPort(p.port)) throw invalid(`service ${name}: bad port ${String(p.port)}`);
    if (p.targetPort !== undefined && !isPort(p.targetPort)) throw invalid(`service ${name}: bad target port`);
    const key = `${proto}/${p.port}`;
    if (seen.has(key)) throw invalid(`service ${name}: port ${key} listed twice`);
    seen.add(key);
    return p.targetPort === undefined || p.targetPort === p.port
      ? { proto, port: p.port }
      : { proto, port: p.port, targetPort: p.targetPort };
  });
}

export function validateBackends(svc: Service, list: unknown[]): Backend[] {
  const out = list.map((b) => validateBackend(svc, b));
  const seen = new Set<string>();
  for (const b of out) {
    if (seen.has(b.address)) throw invalid(`service ${svc.name}: backend ${b.address} listed twice`);
    seen.add(b.address);
  }
  return out;
}

export function validateBackend(svc: Service, b: unknown): Backend {
  if (!isObject(b)) throw invalid(`service ${svc.name}: a backend must be { address, weight }`);
  const a = parseAddr(b.address);
  if (!a) throw invalid(`service ${svc.name}: bad backend address ${JSON.stringify(b.address)}`);
  const weight = b.weight ?? 1;
  if (!Number.isInteger(weight) || (weight as number) < 0 || (weight as number) > MAX_WEIGHT) {
    throw invalid(`service ${svc.name}: a weight is an integer from 0 to ${MAX_WEIGHT}`);
  }
  const onNet = svc.network.subnets.some((s) => contains(parseCidr(s)!, a));
  const family = svc.family ?? a.family;
  if ((b.network !== undefined && b.network !== svc.network.name) || !onNet || a.family !== family) {
    throw new LbError(
      'LB_BACKEND_WRONG_NETWORK',
      `backend ${b.address} of service ${svc.name} is not on network ${svc.network.name}`,
    );
  }
  return { address: canonical(b.address)!, weight: weight as number };
}

function validateHealth(svc: Service, h: unknown): HealthCheck {
  if (!isObject(h) || (h.type !== 'tcp' && h.type !== 'http')) {
    throw invalid(`service ${svc.name}: a health check is { type: 'tcp' | 'http', ... }`);
  }
  const port = h.port ?? svc.ports[0]?.targetPort ?? svc.ports[0]?.port;
  if (!isPort(port)) throw invalid(`service ${svc.name}: the health check needs a port`);
  const int = (k: string, def: number, min: number): number => {
    const v = h[k] ?? def;
    if (!Number.isInteger(v) || (v as number) < min)
      throw invalid(`service ${svc.name}: health ${k} must be >= ${min}`);
    return v as number;
  };
  const path = h.path ?? '/';
  if (typeof path !== 'string' || !path.startsWith('/')) throw invalid(`service ${svc.name}: bad health path`);
  return {
    type: h.type,
    port,
    path,
    intervalMs: int('intervalMs', 5000, 10),
    timeoutMs: int('timeoutMs', 1000, 1),
    healthyThreshold: int('healthyThreshold', 2, 1),
    unhealthyThreshold: int('unhealthyThreshold', 3, 1),
  };
}

/** Whether two services would take the same VIP, protocol and port. */
export function portsClash(a: Service, b: Service): string | undefined {
  if (!a.vip || a.vip !== b.vip) return undefined;
  if (a.ports.length === 0 || b.ports.length === 0) return `every port of ${a.vip}`;
  const p = a.ports.find((x) => b.ports.some((y) => x.proto === y.proto && x.port === y.port));
  return p && `${p.proto}/${p.port} on ${a.vip}`;
}

/** The data plane's view of a service in endpoint mode vip; `out` names the backends out of
 * the rotation (health checks), which get weight 0 like a drained one. Deep-frozen: the
 * nftables data plane takes the same frozen object again as an unchanged service. */
export function toVirtualService(svc: Service, out?: ReadonlySet<string>): VirtualService {
  return Object.freeze({
    mark: svc.mark!,
    vip: svc.vip!,
    ports: Object.freeze(svc.ports.map((p) => Object.freeze({ ...p }))) as ServicePort[],
    scheduler: svc.scheduler,
    backends: Object.freeze(
      svc.backends.map((b) => Object.freeze({ address: b.address, weight: out?.has(b.address) ? 0 : b.weight })),
    ) as Backend[],
  });
}
