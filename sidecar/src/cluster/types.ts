// What the cluster (cluster.ts) and the rest of the daemon tell each other.
import type { Ipam, Store } from '@cnmd/ipam';
import type { EndpointRecord, RemoteEndpoint } from '../network/records.js';
import type { Buckets } from './kv.js';
import type * as R from './records.js';

/** What the cluster tells the controller (apply.ts), and asks of it. */
export interface ClusterSink {
  network(now: R.ClusterNetwork | undefined, old: R.ClusterNetwork | undefined): void;
  service(now: R.ClusterService | undefined, old: R.ClusterService | undefined): void;
  /** An endpoint of another live host came, changed or went (its host died: it went). */
  endpoint(now: RemoteEndpoint | undefined, old: RemoteEndpoint | undefined): void;
  /** This host's endpoints on global networks, as they should be in the cluster. */
  own(): EndpointRecord[];
  /** An encrypted network's keys came or changed. */
  keys?(network: string): void;
  /** A resync is done: the view is the cluster's. */
  synced?(): void;
}

export interface ClusterStatus {
  host: string;
  connected: boolean;
  server?: string;
  servers: string[];
  hosts: { host: string; addr?: string; lastHeartbeatMs?: number; alive: boolean }[];
}

export interface ClusterOptions {
  hostId: string;
  /** This host's underlay address, told to the others (the overlay's VTEP). */
  advertiseAddr?: string;
  /** nats://host:port of the NATS servers. */
  servers: string[];
  creds?: string;
  tlsCa?: string;
  /** A host silent this long is withdrawn from every other host's DNS and LB (ms). */
  graceMs: number;
  /** This host's store (its blocks) and IPAM (the pools of global networks). */
  store: Store;
  ipam: Ipam;
  log: (line: string) => void;
  /** Buckets to use instead of a NATS connection (tests). */
  buckets?: Buckets;
}
