import type { PluginFactory } from '../chain.js';
import { TYPE } from '../rr.js';
import { RCODE } from '../wire.js';

/**
 * libnetwork's ndots rule (resolver.go serveDNS): when the sandbox's resolv.conf sets ndots
 * itself, an A or AAAA query for a name the table does not hold and that has no dot (a single
 * label, or the root) gets NOERROR with no answer instead of a trip upstream, so that the client
 * goes on with its search domains. Other types, and names with a dot, go on as before. Docker
 * applies it to any ndots option, ndots:0 too, though its comment says "> 0": here it needs
 * ndots > 0, since with ndots:0 a client asks every name as is first and means it to be forwarded.
 */
export const ndots: PluginFactory = () => (next) => (req) => {
  const n = req.sandbox.ndots;
  if (n !== undefined && n > 0 && (req.type === TYPE.A || req.type === TYPE.AAAA) && !req.lname.includes('.')) {
    return { source: 'server', rcode: RCODE.NOERROR };
  }
  return next(req);
};
