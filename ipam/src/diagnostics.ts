// Events for whoever observes Ipam (the sidecar's telemetry turns them into metrics). Each
// publish is guarded by hasSubscribers, so an unobserved Ipam pays one property read.
import { channel } from 'node:diagnostics_channel';

export interface PoolEvent {
  op: 'create' | 'release';
  pool: string;
  subnet: string;
}

export interface AddressEvent {
  op: 'allocate' | 'release' | 'exhausted';
  pool: string;
  address?: string;
}

export const poolChannel = channel('cnmd:ipam:pool');
export const addressChannel = channel('cnmd:ipam:address');
