// The CLI's commands, each with its own options and positional arguments (cli/main.ts parses
// and dispatches). Numbers are checked as numbers; an option given twice where one is meant is
// refused.
import { isIP } from 'node:net';
import type { ParseArgsConfig } from 'node:util';
import type { ApiClient } from '../api/client.js';
import type { ClusterStatus } from '../cluster/cluster.js';
import { ApiError } from '../errors.js';
import type { Io } from '../io.js';
import type { EndpointInfo, NetworkInfo, ServiceInfo } from '../network/spec.js';
import { table } from './table.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

export interface Ctx {
  api: ApiClient;
  values: Values;
  /** The positional arguments after the command's own words. */
  args: string[];
  io: Io;
}

export interface Command {
  options: Options;
  /** Positional arguments: how many, and what each is (for the error when one is missing). */
  args: string[];
  run(ctx: Ctx): Promise<void>;
}

export const str = { type: 'string' } as const;
const strs = { type: 'string', multiple: true } as const;
const flag = { type: 'boolean' } as const;
const json = { json: flag };

export const bad = (message: string) => new ApiError('API_INVALID_ARGUMENT', message);

/** An integer option in [min, max]: `--mtu abc` is an error, not 1500. */
function int(values: Values, key: string, min: number, max: number): number | undefined {
  const v = values[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw bad(`--${key} ${JSON.stringify(v)}: an integer from ${min} to ${max}`);
  }
  return Number(v);
}

/** Addresses or subnets given once per family: a second of one family is refused, not a silent overwrite. */
function perFamily(values: Values, key: string, family: (s: string) => 4 | 6): { 4?: string; 6?: string } {
  const out: { 4?: string; 6?: string } = {};
  for (const v of (values[key] as string[] | undefined) ?? []) {
    const f = family(v);
    if (out[f]) throw bad(`--${key} ${v}: an IPv${f} one is given already (${out[f]})`);
    out[f] = v;
  }
  return out;
}

const ipFamily = (s: string): 4 | 6 => (isIP(s) === 6 ? 6 : 4);
const cidrFamily = (s: string): 4 | 6 => (s.includes(':') ? 6 : 4);

function print(io: Io, v: unknown): void {
  io.out(`${JSON.stringify(v, null, 2)}\n`);
}

const svcPath = (ctx: Ctx) => {
  const q = ctx.values.network ? `?network=${encodeURIComponent(ctx.values.network as string)}` : '';
  return `/services/${encodeURIComponent(ctx.args[0]!)}${q}`;
};

export const COMMANDS: Record<string, Command> = {
  'network create': {
    args: ['a network name'],
    options: {
      driver: str,
      subnet: strs,
      gateway: strs,
      'ip-range': str,
      ipv6: flag,
      internal: flag,
      scope: str,
      mtu: str,
      opt: strs,
      icc: str,
    },
    async run({ api, values: v, args, io }) {
      const body: Record<string, unknown> = { name: args[0], driver: v.driver ?? 'bridge' };
      const subnets = perFamily(v, 'subnet', cidrFamily);
      const gateways = perFamily(v, 'gateway', ipFamily);
      if (subnets[4]) body.subnet = subnets[4];
      if (subnets[6]) body.subnet6 = subnets[6];
      if (gateways[4]) body.gateway = gateways[4];
      if (gateways[6]) body.gateway6 = gateways[6];
      if (body.subnet6 || v.ipv6) body.ipv6 = true;
      if (v['ip-range']) body.ipRange = v['ip-range'];
      if (v.internal) body.internal = true;
      if (v.scope) body.scope = v.scope;
      const mtu = int(v, 'mtu', 68, 65535);
      if (mtu !== undefined) body.mtu = mtu;
      if (v.icc !== undefined) {
        if (v.icc !== 'true' && v.icc !== 'false') throw bad('--icc=true|false');
        body.icc = v.icc === 'true';
      }
      const opts: Record<string, string> = {};
      for (const o of (v.opt as string[] | undefined) ?? []) {
        // `--opt encrypted` alone is `encrypted=` (as docker network create takes it)
        const eq = o.includes('=') ? o.indexOf('=') : o.length;
        if (eq < 1) throw bad(`--opt ${o}: expected KEY=VALUE`);
        const k = o.slice(0, eq);
        if (k in opts) throw bad(`--opt ${k} is given twice`);
        opts[k] = o.slice(eq + 1);
      }
      body.options = opts;
      const n = await api.call<NetworkInfo>('POST', '/networks', body);
      io.out(`${n.id}\n`);
    },
  },
  'network ls': {
    args: [],
    options: json,
    async run({ api, values, io }) {
      const nets = await api.call<NetworkInfo[]>('GET', '/networks');
      if (values.json) return print(io, nets);
      const rows = nets.map((n) => [
        n.id.slice(0, 12),
        n.name,
        n.driver,
        n.scope ?? 'local',
        [n.subnet, n.subnet6].filter(Boolean).join(','),
        String(n.endpoints),
      ]);
      io.out(`${table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET', 'ENDPOINTS'], rows)}\n`);
    },
  },
  'network inspect': {
    args: ['a network name'],
    options: json,
    async run({ api, args, io }) {
      print(io, await api.call('GET', `/networks/${encodeURIComponent(args[0]!)}`));
    },
  },
  'network rotate-key': {
    args: ['a network name'],
    options: {},
    async run({ api, args, io }) {
      const r = await api.call<{ network: string; tag: number; ms: number }>(
        'POST',
        `/networks/${encodeURIComponent(args[0]!)}/rotate-key`,
      );
      io.out(`${r.network}: key ${r.tag} in use on every host after ${r.ms} ms\n`);
    },
  },
  'network rm': {
    args: ['a network name'],
    options: {},
    async run({ api, args, io }) {
      await api.call('DELETE', `/networks/${encodeURIComponent(args[0]!)}`);
      io.out(`${args[0]}\n`);
    },
  },
  attach: {
    args: ['a sandbox (NETNS)'],
    options: {
      ...json,
      network: str,
      name: str,
      alias: strs,
      ip: str,
      ip6: str,
      mac: str,
      ifname: str,
      publish: { type: 'string', multiple: true, short: 'p' },
      service: str,
      weight: str,
      'default-route': flag,
      hostname: str,
      dns: strs,
      'dns-search': strs,
      'dns-option': strs,
    },
    async run({ api, values: v, args, io }) {
      if (!v.network) throw bad('--network is required');
      const body: Record<string, unknown> = {
        sandbox: args[0],
        network: v.network,
        aliases: v.alias ?? [],
        publish: v.publish ?? [],
      };
      for (const k of ['name', 'hostname', 'ip', 'ip6', 'mac', 'ifname', 'service'] as const) if (v[k]) body[k] = v[k];
      if (v.dns) body.dns = v.dns;
      if (v['dns-search']) body.dnsSearch = v['dns-search'];
      if (v['dns-option']) body.dnsOptions = v['dns-option'];
      const weight = int(v, 'weight', 0, 65535);
      if (weight !== undefined) body.weight = weight;
      if (v['default-route']) body.defaultRoute = true;
      const ep = await api.call<EndpointInfo>('POST', '/endpoints', body);
      if (v.json) return print(io, ep);
      io.out(`${ep.ifname} ${ep.ip}${ep.ip6 ? ` ${ep.ip6}` : ''} ${ep.mac}\n`);
    },
  },
  detach: {
    args: ['a sandbox (NETNS)'],
    options: { ...json, network: str },
    async run({ api, values, args, io }) {
      const q = new URLSearchParams({ sandbox: args[0]! });
      if (values.network) q.set('network', values.network as string);
      const gone = await api.call<EndpointInfo[]>('DELETE', `/endpoints?${q}`);
      if (values.json) return print(io, gone);
      for (const ep of gone) io.out(`${ep.network} ${ep.ifname} ${ep.ip}\n`);
    },
  },
  ps: {
    args: [],
    options: json,
    async run({ api, values, io }) {
      const eps = await api.call<EndpointInfo[]>('GET', '/endpoints');
      if (values.json) return print(io, eps);
      const rows = eps.map((e) => [
        e.name ?? '',
        e.network,
        e.ifname,
        [e.ip, e.ip6].filter(Boolean).join(','),
        e.mac,
        e.sandbox,
        e.status === 'failed' ? `failed (${e.error?.code})` : e.status,
      ]);
      io.out(`${table(['NAME', 'NETWORK', 'INTERFACE', 'ADDRESS', 'MAC', 'SANDBOX', 'STATUS'], rows)}\n`);
    },
  },
  inspect: {
    args: ['a container name or sandbox'],
    options: json,
    async run({ api, args, io }) {
      print(io, await api.call('GET', `/containers/${encodeURIComponent(args[0]!)}`));
    },
  },
  'service create': {
    args: ['a service name'],
    options: {
      network: str,
      vip: strs,
      port: strs,
      scheduler: str,
      mode: str,
      publish: { type: 'string', multiple: true, short: 'p' },
      health: str,
    },
    async run({ api, values: v, args, io }) {
      if (!v.network) throw bad('--network is required');
      const body: Record<string, unknown> = { name: args[0], network: v.network, ports: v.port ?? [] };
      for (const k of ['scheduler', 'mode', 'health'] as const) if (v[k]) body[k] = v[k];
      const vips = perFamily(v, 'vip', ipFamily);
      if (vips[4]) body.vip = vips[4];
      if (vips[6]) body.vip6 = vips[6];
      if (v.publish) body.publish = v.publish;
      const svc = await api.call<ServiceInfo>('POST', '/services', body);
      io.out(`${[svc.vip, svc.vip6].filter(Boolean).join(' ') || svc.mode}\n`);
    },
  },
  'service ls': {
    args: [],
    options: json,
    async run({ api, values, io }) {
      const svcs = await api.call<ServiceInfo[]>('GET', '/services');
      if (values.json) return print(io, svcs);
      const rows = svcs.map((s) => [
        s.name,
        s.network,
        s.mode,
        [s.vip, s.vip6].filter(Boolean).join(','),
        s.ports.map((p) => `${p.port}/${p.proto}`).join(',') || '*',
        s.scheduler,
        String(s.backends.length),
      ]);
      io.out(`${table(['NAME', 'NETWORK', 'MODE', 'VIP', 'PORTS', 'SCHEDULER', 'BACKENDS'], rows)}\n`);
    },
  },
  'service inspect': {
    args: ['a service name'],
    options: { ...json, network: str },
    async run(ctx) {
      print(ctx.io, await ctx.api.call('GET', svcPath(ctx)));
    },
  },
  'service rm': {
    args: ['a service name'],
    options: { network: str },
    async run(ctx) {
      await ctx.api.call('DELETE', svcPath(ctx));
      ctx.io.out(`${ctx.args[0]}\n`);
    },
  },
  'cluster status': {
    args: [],
    options: json,
    async run({ api, values, io }) {
      const s = await api.call<ClusterStatus>('GET', '/cluster');
      if (values.json) return print(io, s);
      io.out(
        `host ${s.host}, ${s.connected ? `connected to ${s.server}` : 'not connected'} (${s.servers.join(', ')})\n`,
      );
      const rows = s.hosts.map((h) => [
        h.host,
        h.addr ?? '',
        h.lastHeartbeatMs === undefined ? '-' : `${(h.lastHeartbeatMs / 1000).toFixed(1)} s ago`,
        h.host === s.host ? 'this host' : h.alive ? 'alive' : 'gone',
      ]);
      io.out(`${table(['HOST', 'ADDRESS', 'HEARTBEAT', 'STATE'], rows)}\n`);
    },
  },
  'service backends': {
    args: ['a service name'],
    options: { ...json, network: str },
    async run(ctx) {
      const svc = await ctx.api.call<ServiceInfo>('GET', svcPath(ctx));
      if (ctx.values.json) return print(ctx.io, svc.backends);
      const rows = svc.backends.map((b) => [
        b.name ?? '',
        [b.address, b.address6].filter(Boolean).join(','),
        String(b.weight),
        b.health ?? '-',
      ]);
      ctx.io.out(`${table(['NAME', 'ADDRESS', 'WEIGHT', 'HEALTH'], rows)}\n`);
    },
  },
};
