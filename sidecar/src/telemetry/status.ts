// What the status page shows (GET /status.json on the metrics listener): this host's networks
// with their pools' use, every endpoint (this host's, and other hosts' on global networks),
// services with their backends' weight and health and the data plane that balances them, the
// cluster's hosts and their heartbeats, and the last warnings and errors. Read from the
// controller as the API reads it; nothing here changes anything.

import { isIP } from 'node:net';
import type { Ipam } from '@cnmd/ipam';
import type { ClusterStatus } from '../cluster/types.js';
import type { NetworkController } from '../network/controller.js';
import type { LogEntry } from './log.js';

export interface StatusDoc {
  host: string;
  time: string;
  networks: {
    name: string;
    id: string;
    driver: string;
    scope: string;
    subnet: string;
    subnet6?: string;
    gateway?: string;
    internal: boolean;
    endpoints: number;
    pool: { used: number; size: number };
  }[];
  endpoints: {
    name?: string;
    sandbox: string;
    network: string;
    host: string;
    aliases: string[];
    addresses: string[];
    mac?: string;
    ifname?: string;
    status: string;
    error?: string;
  }[];
  services: {
    name: string;
    network: string;
    mode: string;
    vip?: string;
    vip6?: string;
    ports: string[];
    scheduler: string;
    dataplane?: string;
    health?: string;
    backends: { name?: string; address: string; address6?: string; weight: number; health: string }[];
  }[];
  cluster?: ClusterStatus;
  errors: LogEntry[];
}

export interface StatusSources {
  controller: NetworkController;
  ipam: Ipam;
  host: string;
  cluster?: { status(): ClusterStatus } | undefined;
  /** Network name → the data plane balancing its VIPs. */
  dataplanes: () => Record<string, string>;
  errors: () => LogEntry[];
}

/**
 * Addresses a pool can hand out: its range (or subnet), less the network and broadcast
 * addresses of an IPv4 subnet of /30 or wider, less the gateway. IPv6 counts saturate at 2^53.
 */
export function poolSize(cidr: string, gateway?: string | false): number {
  const [addr, len] = cidr.split('/');
  const bits = isIP(addr ?? '') === 6 ? 128 : 32;
  const host = bits - Number(len);
  if (!(host >= 0)) return 0;
  const all = host >= 53 ? 2 ** 53 : 2 ** host;
  const edges = bits === 32 && host >= 2 ? 2 : 0;
  return Math.max(0, all - edges - (gateway ? 1 : 0));
}

function ports(p: { name?: string; proto: string; port: number; targetPort?: number }): string {
  return `${p.name ? `${p.name}=` : ''}${p.port}${p.targetPort && p.targetPort !== p.port ? `:${p.targetPort}` : ''}/${p.proto}`;
}

export function statusDoc(s: StatusSources, now = new Date()): StatusDoc {
  const c = s.controller;
  const planes = s.dataplanes();
  const names = new Map(c.networks.all().map((n) => [n.id, n.spec.name]));
  const networks = c.listNetworks().map((n) => {
    const rec = c.networks.get(n.id);
    const pool = rec ? s.ipam.pool(rec.pool4) : undefined;
    return {
      name: n.name,
      id: n.id.slice(0, 12),
      driver: n.driver,
      scope: n.scope ?? 'local',
      subnet: n.subnet,
      ...(rec?.subnet6 ? { subnet6: rec.subnet6 } : {}),
      ...(n.gateway ? { gateway: n.gateway } : {}),
      internal: n.internal,
      endpoints: n.endpoints,
      pool: { used: pool?.used ?? 0, size: pool ? poolSize(pool.ipRange ?? pool.subnet, pool.gateway) : 0 },
    };
  });
  const endpoints: StatusDoc['endpoints'] = c.endpoints
    .all()
    .filter((e) => e.state === 'ready' && !e.lb)
    .map((e) => {
      const failure = c.failed.get(e.id);
      return {
        ...(e.name ? { name: e.name } : {}),
        sandbox: e.sandbox,
        network: e.mode ? `(${e.mode})` : (names.get(e.network) ?? e.network),
        host: s.host,
        aliases: e.aliases,
        addresses: [e.ip, e.ip6].filter((a): a is string => Boolean(a)),
        ...(e.mac ? { mac: e.mac } : {}),
        ...(e.ifname ? { ifname: e.ifname } : {}),
        status: failure ? 'failed' : 'ready',
        ...(failure ? { error: `${failure.code}: ${failure.message}` } : {}),
      };
    });
  // Other hosts' endpoints on the global networks this host has.
  if (c.cluster) {
    for (const net of c.networks.all()) {
      if (net.spec.scope !== 'global' || net.state !== 'ready') continue;
      for (const r of c.cluster.remoteEndpoints(net)) {
        endpoints.push({
          ...(r.name ? { name: r.name } : {}),
          sandbox: r.containerId.slice(0, 12),
          network: net.spec.name,
          host: r.host,
          aliases: r.aliases,
          addresses: [r.ip, r.ip6].filter((a): a is string => Boolean(a)),
          ...(r.mac ? { mac: r.mac } : {}),
          status: 'ready',
        });
      }
    }
  }
  const services = c.listServices().map((svc) => {
    const net = names.get(svc.network) ?? svc.network;
    const h = svc.health;
    return {
      name: svc.name,
      network: net,
      mode: svc.mode,
      ...(svc.vip ? { vip: svc.vip } : {}),
      ...(svc.vip6 ? { vip6: svc.vip6 } : {}),
      ports: svc.ports.map(ports),
      scheduler: svc.scheduler,
      ...(svc.mode === 'vip' && planes[net] ? { dataplane: planes[net] } : {}),
      ...(h ? { health: `${h.type}:${h.port}${h.path ?? ''}` } : {}),
      backends: svc.backends.map((b) => ({
        ...(b.name ? { name: b.name } : {}),
        address: b.address,
        ...(b.address6 ? { address6: b.address6 } : {}),
        weight: b.weight,
        health: b.health ?? 'unchecked',
      })),
    };
  });
  return {
    host: s.host,
    time: now.toISOString(),
    networks,
    endpoints,
    services,
    ...(s.cluster ? { cluster: s.cluster.status() } : {}),
    errors: s.errors().reverse(), // newest first
  };
}
