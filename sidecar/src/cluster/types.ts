// What the cluster (cluster.ts) and the rest of the daemon tell each other.
import type { EndpointRecord, RemoteEndpoint } from '../network/records.js';
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
