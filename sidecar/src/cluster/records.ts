// What hosts share through the cluster's JetStream KV buckets, and the checks every value from
// the cluster passes before it is used: another host may run a newer version or have a bug, so a
// value that does not parse, has a version this code does not know, or names a host that is not
// its writer is refused (the caller logs it once and changes nothing).
import { isIP } from 'node:net';
import { ALIAS, NAME, SERVICE_NAME } from '../network/parse.js';
import type { NetworkSpec, ServiceSpec } from '../network/spec.js';

/** The version of the records this code writes and reads. */
export const RECORD_VERSION = 1;

/** A host's name in the cluster (--host-id), as it appears in keys. */
export const HOST_ID = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/;
const ID = /^[0-9a-f]{64}$/;

/** A global network, defined once for the cluster (bucket `cnmd_networks`, key: its id). */
export interface ClusterNetwork {
  v: 1;
  id: string;
  spec: NetworkSpec;
  subnet: string;
  gateway?: string;
  /** The host that created it. */
  host: string;
  created: string;
}

/** An endpoint on a global network (bucket `cnmd_endpoints`, key `host.<host>.<id>`). */
export interface ClusterEndpoint {
  v: 1;
  host: string;
  id: string;
  /** The network's id. */
  network: string;
  containerId: string;
  name?: string;
  aliases: string[];
  hostname?: string;
  ip?: string;
  ip6?: string;
  mac?: string;
  service?: string;
  weight?: number;
  /** Its host's underlay address: where an overlay sends its frames. */
  vtep?: string;
}

/** A service on a global network (bucket `cnmd_services`, key `<network id>.<name>`). */
export interface ClusterService {
  v: 1;
  id: string;
  spec: ServiceSpec;
  network: string;
  vip?: string;
  mark?: number;
  host: string;
}

/** A host's heartbeat (bucket `cnmd_hosts`, key: the host id). */
export interface ClusterHost {
  v: 1;
  host: string;
  /** Its underlay address (--advertise-addr), for the overlay. */
  addr?: string;
  /** When it wrote this, ms since the epoch, by its own clock (shown; liveness is judged by arrival). */
  at: number;
  started: number;
}

/** A claim in the IPAM bucket (`cnmd_ipam`): a block of a network's subnet, a subnet, a mark, a VNI. */
export interface ClusterClaim {
  v: 1;
  host: string;
}

/**
 * The keys of an encrypted overlay (bucket `cnmd_keys`, key `net.<network id>`): 32 random bytes
 * each (base64), oldest first, each with a tag (1, 2, …); `primary` is the one hosts send with.
 * Each IPsec state's own key is derived from one of these (drivers/overlay/ipsec.ts).
 */
export interface ClusterKeys {
  v: 1;
  network: string;
  keys: { tag: number; key: string }[];
  primary: number;
  /** Rotate every this many ms; the last rotation ended at `rotated`, the last step at `step`
   * (ms since the epoch, by the writer's clock). */
  every: number;
  rotated: number;
  step: number;
}

/** What a host holds of a network's keys (key `ack.<network id>.<host>`): the tags of the keys
 * it receives with, and the one it sends with. */
export interface ClusterKeysAck {
  v: 1;
  host: string;
  network: string;
  tags: number[];
  primary: number;
}

export type Refusal = { error: string };

export const endpointKey = (host: string, id: string) => `host.${host}.${id}`;
export const serviceKey = (network: string, name: string) => `${network}.${name}`;
export const blockKey = (network: string, index: number) => `block.${network}.${index}`;
export const markKey = (mark: number) => `mark.${mark}`;
export const vniKey = (vni: number) => `vni.${vni}`;
export const portKey = (port: number) => `port.${port}`;
export const keysKey = (network: string) => `net.${network}`;
export const ackKey = (network: string, host: string) => `ack.${network}.${host}`;
export const subnetKey = (cidr: string) => `subnet.${cidr.replace('/', '_')}`;

type Obj = Record<string, unknown>;

function parse(text: string): Obj | Refusal {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { error: 'not JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { error: 'not a JSON object' };
  const o = v as Obj;
  if (typeof o.v === 'number' && o.v > RECORD_VERSION) return { error: `from a newer version (v${o.v})` };
  if (o.v !== RECORD_VERSION) return { error: 'no version' };
  return o;
}

const str = (o: Obj, k: string, test: (s: string) => boolean = () => true) =>
  typeof o[k] === 'string' && o[k] !== '' && test(o[k] as string);
const opt = (o: Obj, k: string, test: (s: string) => boolean) => o[k] === undefined || str(o, k, test);
const ip4 = (s: string) => isIP(s) === 4;
const ip6 = (s: string) => isIP(s) === 6;
const cidr = (s: string) => /^[0-9a-fA-F:.]+\/\d{1,3}$/.test(s);
const bad = (what: string): Refusal => ({ error: what });

export function decodeNetwork(key: string, text: string): ClusterNetwork | Refusal {
  const o = parse(text);
  if ('error' in o) return o as Refusal;
  if (!str(o, 'id', (s) => ID.test(s)) || o.id !== key) return bad('its id is not its key');
  if (!str(o, 'host', (s) => HOST_ID.test(s))) return bad('no writer host');
  if (!str(o, 'subnet', cidr) || !opt(o, 'gateway', (s) => isIP(s) !== 0)) return bad('a bad subnet or gateway');
  const spec = o.spec as Obj | undefined;
  if (typeof spec !== 'object' || spec === null || !str(spec, 'name', (s) => NAME.test(s)) || !str(spec, 'driver')) {
    return bad('a bad spec');
  }
  if (spec.scope !== 'global') return bad('not a global network');
  return o as unknown as ClusterNetwork;
}

export function decodeEndpoint(key: string, text: string): ClusterEndpoint | Refusal {
  const o = parse(text);
  if ('error' in o) return o as Refusal;
  const m = /^host\.([^.]+)\.([0-9a-f]{64})$/.exec(key);
  if (!m) return bad('not an endpoint key');
  if (o.host !== m[1]) return bad(`written for host ${String(o.host)} under host ${m[1]}'s key`);
  if (o.id !== m[2]) return bad('its id is not its key');
  if (!str(o, 'network', (s) => ID.test(s)) || !str(o, 'containerId', (s) => ID.test(s))) return bad('a bad id');
  if (!opt(o, 'name', (s) => NAME.test(s)) || !opt(o, 'hostname', (s) => ALIAS.test(s))) return bad('a bad name');
  if (!Array.isArray(o.aliases) || !o.aliases.every((a) => typeof a === 'string' && ALIAS.test(a))) {
    return bad('bad aliases');
  }
  if (!opt(o, 'ip', ip4) || !opt(o, 'ip6', ip6)) return bad('a bad address');
  if (!opt(o, 'mac', (s) => /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(s))) return bad('a bad MAC');
  if (!opt(o, 'vtep', (s) => isIP(s) !== 0)) return bad('a bad VTEP');
  if (!opt(o, 'service', (s) => SERVICE_NAME.test(s))) return bad('a bad service name');
  if (
    o.weight !== undefined &&
    !(Number.isInteger(o.weight) && (o.weight as number) >= 0 && (o.weight as number) <= 65535)
  ) {
    return bad('a bad weight');
  }
  return o as unknown as ClusterEndpoint;
}

export function decodeService(key: string, text: string): ClusterService | Refusal {
  const o = parse(text);
  if ('error' in o) return o as Refusal;
  const spec = o.spec as Obj | undefined;
  if (typeof spec !== 'object' || spec === null || !str(spec, 'name', (s) => SERVICE_NAME.test(s))) {
    return bad('a bad spec');
  }
  if (!str(o, 'id', (s) => ID.test(s)) || !str(o, 'network', (s) => ID.test(s))) return bad('a bad id');
  if (key !== serviceKey(o.network as string, spec.name as string)) return bad('its network and name are not its key');
  if (!str(o, 'host', (s) => HOST_ID.test(s))) return bad('no writer host');
  if (!opt(o, 'vip', ip4)) return bad('a bad VIP');
  if (o.mark !== undefined && !(Number.isInteger(o.mark) && (o.mark as number) >= 256)) return bad('a bad mark');
  if (!Array.isArray(spec.ports) || (spec.mode !== 'vip' && spec.mode !== 'dnsrr')) return bad('a bad spec');
  return o as unknown as ClusterService;
}

export function decodeHost(key: string, text: string): ClusterHost | Refusal {
  const o = parse(text);
  if ('error' in o) return o as Refusal;
  if (o.host !== key || !HOST_ID.test(key)) return bad(`written for host ${String(o.host)} under ${key}`);
  if (typeof o.at !== 'number' || typeof o.started !== 'number') return bad('no time');
  if (!opt(o, 'addr', (s) => isIP(s) !== 0)) return bad('a bad address');
  return o as unknown as ClusterHost;
}

export function decodeClaim(_key: string, text: string): ClusterClaim | Refusal {
  const o = parse(text);
  if ('error' in o) return o as Refusal;
  if (!str(o, 'host', (s) => HOST_ID.test(s))) return bad('no host');
  return o as unknown as ClusterClaim;
}

const tag = (t: unknown): t is number => Number.isInteger(t) && (t as number) >= 1 && (t as number) < 2 ** 31;
const time = (t: unknown): t is number => Number.isSafeInteger(t) && (t as number) >= 0;

/** A network's keys, or an ack of them: both in `cnmd_keys`. */
export function decodeKeys(key: string, text: string): ClusterKeys | ClusterKeysAck | Refusal {
  const o = parse(text);
  if ('error' in o) return o as Refusal;
  const net = /^net\.([0-9a-f]{64})$/.exec(key);
  const ack = /^ack\.([0-9a-f]{64})\.([^.]+)$/.exec(key);
  if (ack) {
    if (o.network !== ack[1] || o.host !== ack[2]) return bad('its network and host are not its key');
    if (!Array.isArray(o.tags) || !o.tags.every(tag) || !tag(o.primary)) return bad('bad tags');
    return o as unknown as ClusterKeysAck;
  }
  if (!net || o.network !== net[1]) return bad('not a network keys key');
  const keys = o.keys;
  if (!Array.isArray(keys) || keys.length < 1 || keys.length > 3) return bad('one to three keys');
  for (const [i, k] of keys.entries()) {
    if (typeof k !== 'object' || k === null || !tag(k.tag) || (i > 0 && k.tag <= keys[i - 1].tag)) {
      return bad('keys not in order of their tags');
    }
    if (typeof k.key !== 'string' || Buffer.from(k.key, 'base64').length !== 32) return bad('a key is not 32 bytes');
  }
  if (!keys.some((k) => k.tag === o.primary)) return bad('its primary key is not one of its keys');
  if (!(Number.isInteger(o.every) && (o.every as number) >= 10_000)) return bad('a bad rotation period');
  if (!time(o.rotated) || !time(o.step)) return bad('no time');
  return o as unknown as ClusterKeys;
}

export const encode = (r: object): string => JSON.stringify(r);
