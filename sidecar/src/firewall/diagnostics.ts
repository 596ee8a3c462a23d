// Events for whoever observes the firewall (the sidecar's telemetry turns them into metrics,
// e.g. cnmd_sidecar_firewall_transactions and their duration). Guarded by hasSubscribers, so
// an unobserved firewall pays one property read per transaction.
import { channel } from 'node:diagnostics_channel';

export interface FirewallTransactionEvent {
  /** The Firewall method that made the transaction. */
  op: 'start' | 'addNetwork' | 'removeNetwork' | 'publish' | 'unpublish' | 'reconcile' | 'reset';
  /** Lines of the nft script: what one change cost. */
  lines: number;
  ms: number;
  /** The error code when nft refused it. */
  error?: string;
}

export const transactionChannel = channel('cnmd:sidecar:firewall');
