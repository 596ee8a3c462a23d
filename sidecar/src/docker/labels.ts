// What a container asks of cnmd through its `cnmd.*` labels (README, Docker). Pure: labels in,
// an intent out, or SIDECAR_DOCKER_LABEL naming the label and why; the source then leaves the
// container alone. A container without `cnmd.networks` is not cnmd's (undefined).
import { isIP } from 'node:net';
import { SidecarError } from '../errors.js';
import { ALIAS, NAME, SERVICE_NAME } from '../network/parse.js';
import { parseHealth, parseServicePort } from '../network/parse-service.js';
import type { HealthSpec, ServicePortSpec } from '../network/spec.js';

export const NETWORKS_LABEL = 'cnmd.networks';
const COMPOSE_SERVICE = 'com.docker.compose.service';
export const SCOPE_LABEL = 'cnmd.scope';
const KNOWN = [
  'cnmd.networks',
  'cnmd.aliases',
  'cnmd.service',
  'cnmd.ports',
  'cnmd.health',
  'cnmd.weight',
  SCOPE_LABEL,
];

export interface NetworkWish {
  name: string;
  /** A fixed address on that network. */
  ip?: string;
  ip6?: string;
}

export interface DockerIntent {
  /** In order: the first network gives the default route. */
  networks: NetworkWish[];
  aliases: string[];
  /** The service the container is a task of, on each of its networks. */
  service?: string;
  /** The service's ports and health check, when it is created on first use. */
  ports: ServicePortSpec[];
  health?: HealthSpec;
  weight?: number;
  /** Only the cnmd daemon started with this scope (--docker-scope) handles the container. */
  scope?: string;
}

const bad = (label: string, value: string, why: string) =>
  new SidecarError('SIDECAR_DOCKER_LABEL', `label ${label}=${JSON.stringify(value)}: ${why}`);

/** A comma-separated label as a list: blanks around items dropped, empty items refused. */
function list(label: string, value: string): string[] {
  if (value.trim() === '') return [];
  const items = value.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw bad(label, value, 'an empty item');
  return items;
}

export function parseLabels(labels: Record<string, string> | null | undefined): DockerIntent | undefined {
  const l = labels ?? {};
  const nets = l[NETWORKS_LABEL];
  if (nets === undefined) return undefined;
  for (const k of Object.keys(l)) {
    if (k.startsWith('cnmd.') && !KNOWN.includes(k)) throw bad(k, l[k]!, `unknown label (known: ${KNOWN.join(', ')})`);
  }
  const intent: DockerIntent = { networks: parseNetworks(nets), aliases: [], ports: [] };
  const aliases = list('cnmd.aliases', l['cnmd.aliases'] ?? '');
  for (const a of aliases) if (!ALIAS.test(a)) throw bad('cnmd.aliases', l['cnmd.aliases']!, `${a} is not a DNS name`);
  intent.aliases = [...new Set(aliases)];

  // cnmd.service wins; empty opts out; else the compose service, if any.
  const explicit = l['cnmd.service'];
  const service = explicit ?? l[COMPOSE_SERVICE];
  if (service !== undefined && service !== '') {
    const label = explicit === undefined ? COMPOSE_SERVICE : 'cnmd.service';
    if (!SERVICE_NAME.test(service))
      throw bad(label, service, 'not a valid service name (at most 60 of [a-zA-Z0-9_.-], not ending in .v6)');
    intent.service = service;
  }
  for (const k of ['cnmd.ports', 'cnmd.health', 'cnmd.weight']) {
    if (l[k] !== undefined && !intent.service) throw bad(k, l[k]!, 'the container is no service task');
  }
  const ports = l['cnmd.ports'];
  if (ports !== undefined) {
    for (const p of list('cnmd.ports', ports)) {
      try {
        intent.ports.push(parseServicePort(p));
      } catch {
        throw bad('cnmd.ports', ports, `${p}: expected [NAME=]PORT[:TARGET][/tcp|udp]`);
      }
    }
  }
  const health = l['cnmd.health'];
  if (health !== undefined) {
    try {
      intent.health = parseHealth(health); // the syntax of `cnmd service create --health`
    } catch (err) {
      throw bad('cnmd.health', health, (err as Error).message);
    }
  }
  const scope = l[SCOPE_LABEL];
  if (scope !== undefined) {
    if (!NAME.test(scope)) throw bad(SCOPE_LABEL, scope, 'not a valid scope name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)');
    intent.scope = scope;
  }
  const weight = l['cnmd.weight'];
  if (weight !== undefined) {
    if (!/^\d{1,5}$/.test(weight) || Number(weight) > 65535) throw bad('cnmd.weight', weight, 'expected 0..65535');
    intent.weight = Number(weight);
  }
  return intent;
}

/** Networks one container may name: each is an interface, and may be a network made for it. */
export const MAX_LABEL_NETWORKS = 8;

function parseNetworks(value: string): NetworkWish[] {
  const items = list(NETWORKS_LABEL, value);
  if (items.length === 0) throw bad(NETWORKS_LABEL, value, 'names no network');
  if (items.length > MAX_LABEL_NETWORKS) throw bad(NETWORKS_LABEL, value, `more than ${MAX_LABEL_NETWORKS} networks`);
  const out: NetworkWish[] = [];
  for (const item of items) {
    const at = item.indexOf('@');
    const name = at < 0 ? item : item.slice(0, at);
    if (!NAME.test(name)) throw bad(NETWORKS_LABEL, value, `${name} is not a network name`);
    if (out.some((n) => n.name === name)) throw bad(NETWORKS_LABEL, value, `${name} is given twice`);
    const wish: NetworkWish = { name };
    if (at >= 0) {
      const addr = item.slice(at + 1);
      const family = isIP(addr);
      if (family === 4) wish.ip = addr;
      else if (family === 6) wish.ip6 = addr;
      else throw bad(NETWORKS_LABEL, value, `${addr} is not an IP address`);
    }
    out.push(wish);
  }
  return out;
}
