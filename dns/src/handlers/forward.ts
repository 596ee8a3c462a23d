import type { PluginFactory } from '../chain.js';
import { RCODE } from '../wire.js';
import type { ServerContext } from './context.js';

/**
 * Names the table does not hold go to the sandbox's upstreams. A sandbox that does not forward
 * (internal networks) gets REFUSED: the name is not ours to answer, and a client with another
 * nameserver may try it. Past maxInflight forwarded queries: REFUSED, as libnetwork answers.
 * No upstream answered, or each said SERVFAIL or REFUSED: SERVFAIL of our own (libnetwork).
 */
export const forward: PluginFactory<ServerContext> = (ctx) => (next) => async (req) => {
  const sb = req.sandbox;
  if (!sb.forward) return { source: 'server', rcode: RCODE.REFUSED };
  if (sb.inflight >= ctx.maxInflight) return { source: 'server', rcode: RCODE.REFUSED };
  sb.inflight++;
  try {
    const message = await ctx.forwarder.resolve(sb.upstreams, {
      question: req.question,
      flags: req.flags,
      edns: req.edns,
      tcp: req.tcp,
      sandbox: sb.id,
      via: sb.sockets && { route: sb.route, sockets: sb.sockets },
    });
    if (message) return { source: 'upstream', rcode: message.rcode, message };
  } finally {
    sb.inflight--;
  }
  return next(req);
};
