// What the metrics read when they are collected (gauges: networks, endpoints, sandboxes, backends
// by health, pool use, the cluster), and the packages' events they count (load-balancer syncs,
// health changes, firewall transactions, IPAM). Events come on node:diagnostics_channel, each a
// change of the daemon's state, never one per DNS query.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Ipam } from '@cnmd/ipam';
import { healthChannel, type LbHealthEvent, type LbSyncEvent, syncChannel } from '@cnmd/lb';
import type { BatchObservableResult, Meter, ObservableGauge } from '@opentelemetry/api';
import type { Cluster } from '../cluster/cluster.js';
import { type FirewallTransactionEvent, transactionChannel } from '../firewall/diagnostics.js';
import type { NetworkController } from '../network/controller.js';
import type { ClusterWatch } from './instrument.js';
import type { Instruments } from './metrics.js';
import { poolSize } from './status.js';

/** @cnmd/ipam publishes on it by name (ipam/README.md, Events); it exports no channel object. */
const IPAM_ADDRESS_CHANNEL = 'cnmd:ipam:address';
interface AddressEvent {
  op: 'allocate' | 'release' | 'exhausted';
}

export interface ObservedSources {
  controller: NetworkController;
  ipam: Ipam;
  cluster?: Cluster | undefined;
  watch?: ClusterWatch | undefined;
}

/** Gauges read at collection time from the controller, IPAM and the cluster. */
export function observeState(meter: Meter, src: () => ObservedSources | undefined): void {
  const g = (name: string, description: string, unit?: string) =>
    meter.createObservableGauge(name, { description, ...(unit ? { unit } : {}) });
  const networks = g('cnmd_sidecar_networks', 'Networks on this host, by driver and scope');
  const endpoints = g('cnmd_sidecar_endpoints', "This host's endpoints, by network and status (ready, failed)");
  const sandboxes = g('cnmd_sidecar_sandboxes', 'Sandboxes with at least one endpoint (load-balancer sandboxes aside)');
  const services = g('cnmd_sidecar_services', 'Services, by network and mode');
  const backends = g('cnmd_lb_backends', 'Tasks of each service, by health (healthy, unhealthy, unchecked)');
  const poolUsed = g('cnmd_ipam_pool_used_addresses', "Addresses handed out of each network's pool");
  const poolSizeG = g('cnmd_ipam_pool_size_addresses', "Addresses each network's pool can hand out");
  const connected = g('cnmd_sidecar_cluster_connected', 'Whether this host is connected to NATS (1) or not (0)');
  const hosts = g('cnmd_sidecar_cluster_hosts', 'Hosts of the cluster, by state (alive, gone)');
  const heartbeat = g('cnmd_sidecar_cluster_heartbeat_age_seconds', 'Time since each other host was last heard', 's');
  const lag = g(
    'cnmd_sidecar_cluster_watch_lag_seconds',
    "Time from this host's last heartbeat being put to its coming back through the watch",
    's',
  );
  const all = [
    networks,
    endpoints,
    sandboxes,
    services,
    backends,
    poolUsed,
    poolSizeG,
    connected,
    hosts,
    heartbeat,
    lag,
  ];
  meter.addBatchObservableCallback((r) => {
    const s = src();
    if (!s) return;
    const c = s.controller;
    const count = <K extends string>(m: Map<K, number>, key: K) => m.set(key, (m.get(key) ?? 0) + 1);
    const byNet = new Map<string, number>();
    for (const n of c.networks.all()) {
      if (n.state === 'ready') count(byNet, `${n.spec.driver}\0${n.spec.scope ?? 'local'}`);
    }
    for (const [k, v] of byNet) {
      const [driver, scope] = k.split('\0');
      r.observe(networks, v, { driver, scope });
    }
    const names = new Map(c.networks.all().map((n) => [n.id, n.spec.name]));
    const byEp = new Map<string, number>();
    const boxes = new Set<string>();
    for (const e of c.endpoints.all()) {
      if (e.state !== 'ready' || e.lb) continue;
      boxes.add(e.sandboxKey);
      count(
        byEp,
        `${e.mode ? `(${e.mode})` : (names.get(e.network) ?? e.network)}\0${c.failed.has(e.id) ? 'failed' : 'ready'}`,
      );
    }
    for (const [k, v] of byEp) {
      const [network, status] = k.split('\0');
      r.observe(endpoints, v, { network, status });
    }
    r.observe(sandboxes, boxes.size);
    const bySvc = new Map<string, number>();
    for (const svc of c.listServices()) {
      const network = names.get(svc.network) ?? svc.network;
      count(bySvc, `${network}\0${svc.mode}`);
      const health = new Map<string, number>([
        ['healthy', 0],
        ['unhealthy', 0],
        ['unchecked', 0],
      ]);
      for (const b of svc.backends) count(health, b.health ?? 'unchecked');
      for (const [h, v] of health) r.observe(backends, v, { network, service: svc.name, health: h });
    }
    for (const [k, v] of bySvc) {
      const [network, mode] = k.split('\0');
      r.observe(services, v, { network, mode });
    }
    for (const n of c.networks.all()) {
      if (n.state !== 'ready') continue;
      for (const [family, id] of [
        ['ipv4', n.pool4],
        ['ipv6', n.pool6],
      ] as const) {
        const pool = id ? s.ipam.pool(id) : undefined;
        if (!pool) continue;
        r.observe(poolUsed, pool.used, { network: n.spec.name, family });
        r.observe(poolSizeG, poolSize(pool.ipRange ?? pool.subnet, pool.gateway), { network: n.spec.name, family });
      }
    }
    observeCluster(r, s, { connected, hosts, heartbeat, lag });
  }, all);
}

function observeCluster(
  r: BatchObservableResult,
  s: ObservedSources,
  g: Record<'connected' | 'hosts' | 'heartbeat' | 'lag', ObservableGauge>,
): void {
  if (!s.cluster) return;
  const st = s.cluster.status();
  r.observe(g.connected, st.connected ? 1 : 0);
  let alive = 0;
  for (const h of st.hosts) {
    if (h.alive) alive++;
    if (h.host !== st.host && h.lastHeartbeatMs !== undefined) {
      r.observe(g.heartbeat, h.lastHeartbeatMs / 1000, { host: h.host });
    }
  }
  r.observe(g.hosts, alive, { state: 'alive' });
  r.observe(g.hosts, st.hosts.length - alive, { state: 'gone' });
  if (s.watch?.lag !== undefined) r.observe(g.lag, s.watch.lag);
}

/** Counts the packages' events into the instruments; returns what stops it. */
export function countEvents(i: Instruments): () => void {
  const onSync = (m: unknown) => {
    const e = m as LbSyncEvent;
    const dataplane = e.dataplane;
    i.lbSyncDuration.record(e.ms / 1000, { dataplane });
    if (e.added) i.lbChanges.add(e.added, { dataplane, change: 'added' });
    if (e.changed) i.lbChanges.add(e.changed, { dataplane, change: 'changed' });
    if (e.removed) i.lbChanges.add(e.removed, { dataplane, change: 'removed' });
    if (e.error) i.lbSyncFailures.add(1, { dataplane, code: e.error });
  };
  const onHealth = (m: unknown) => {
    i.lbHealthChanges.add(1, { health: (m as LbHealthEvent).healthy ? 'healthy' : 'unhealthy' });
  };
  const onFirewall = (m: unknown) => {
    const e = m as FirewallTransactionEvent;
    i.firewallDuration.record(e.ms / 1000, { op: e.op });
    if (e.error) i.firewallFailures.add(1, { op: e.op, code: e.error });
  };
  const onAddress = (m: unknown) => {
    const e = m as AddressEvent;
    if (e.op === 'allocate') i.ipamAllocated.add(1);
    else if (e.op === 'release') i.ipamReleased.add(1);
    else i.ipamExhausted.add(1);
  };
  const subs: [string, (m: unknown) => void][] = [
    [syncChannel.name as string, onSync],
    [healthChannel.name as string, onHealth],
    [transactionChannel.name as string, onFirewall],
    [IPAM_ADDRESS_CHANNEL, onAddress],
  ];
  for (const [name, fn] of subs) subscribe(name, fn);
  return () => {
    for (const [name, fn] of subs) unsubscribe(name, fn);
  };
}
