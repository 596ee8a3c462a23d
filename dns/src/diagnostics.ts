import diagnostics_channel from 'node:diagnostics_channel';

// Events for the sidecar's telemetry (undici lib/core/diagnostics.js does the same). Publishers
// check hasSubscribers first, so an unobserved server builds no event objects.

/** Every answered query: { sandbox, name, type, rcode, source, transport }. */
export const queryChannel = diagnostics_channel.channel('cnmd:dns:query');
/** Every upstream attempt: { sandbox, upstream, name, type, transport, outcome, rcode?, durationMs, error? }. */
export const forwardChannel = diagnostics_channel.channel('cnmd:dns:forward');
/**
 * An upstream marked down or back up: { upstream, state: 'down' | 'up', until?, sandbox? };
 * `sandbox` when it was reached through that sandbox's own sockets, whose health is its own.
 */
export const upstreamChannel = diagnostics_channel.channel('cnmd:dns:upstream');
/** A packet dropped or refused as malformed, or an internal error: { sandbox, reason, rcode?, error? }. */
export const errorChannel = diagnostics_channel.channel('cnmd:dns:error');

export interface QueryEvent {
  sandbox: string;
  name: string;
  type: number;
  rcode: number;
  source: 'table' | 'cache' | 'upstream' | 'server';
  transport: 'udp' | 'tcp';
}
