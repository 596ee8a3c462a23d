// Events for whoever observes the load balancer (the sidecar's telemetry turns them into the
// metrics listed in lb/README.md). Guarded by hasSubscribers: unobserved, an event costs one
// property read.
import { channel } from 'node:diagnostics_channel';

export interface LbSyncEvent {
  /** The LoadBalancer method that made the change, or 'drain-expired' / 'health'. */
  op: string;
  dataplane: string;
  /** Services held after the change (VIP services, the ones a data plane programs). */
  services: number;
  backends: number;
  added: number;
  changed: number;
  removed: number;
  ms: number;
  /** The error code when the data plane refused the change. */
  error?: string;
}

export interface LbHealthEvent {
  service: string;
  address: string;
  healthy: boolean;
}

export const syncChannel = channel('cnmd:lb:sync');
export const healthChannel = channel('cnmd:lb:health');
