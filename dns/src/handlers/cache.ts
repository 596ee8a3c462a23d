import type { PluginFactory, Reply, Request } from '../chain.js';
import type { ServerContext } from './context.js';

/**
 * Forwarded answers, positive and negative (RFC 2308), kept for their TTL. The key holds the
 * sandbox's upstreams, since two sandboxes may forward to servers that disagree, and the route
 * when it forwards through its own sockets, since an upstream may answer one namespace what it
 * refuses another (ACLs, views); a sandbox that does not forward is never answered from here.
 */
export const cache: PluginFactory<ServerContext> = (ctx) => (next) => {
  const store = ctx.cache;
  if (!store) return next;
  return (req) => {
    if (!req.sandbox.forward) return next(req);
    const key = cacheKey(req);
    const hit = store.get(key);
    if (hit) return { source: 'cache', rcode: hit.message.rcode, message: hit.message, age: hit.age };
    const keep = (r: Reply): Reply => {
      if (r.source === 'upstream' && r.message) store.set(key, r.message);
      return r;
    };
    const r = next(req);
    return r instanceof Promise ? r.then(keep) : keep(r);
  };
};

function cacheKey(req: Request): string {
  const ups = req.sandbox.upstreams.map((u) => u.key).join(',');
  // DO and CD change what an upstream returns (RFC 4035 3.2): they are part of the question.
  return `${req.sandbox.route}|${ups}|${req.key}|${req.type}|${req.class}|${req.flags & 0x0010}|${req.edns?.dnssecOk ? 1 : 0}`;
}
