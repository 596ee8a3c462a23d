import { addRecord, type PluginFactory } from '../chain.js';
import { ptrRr, TYPE } from '../rr.js';
import { wants } from './wants.js';

/**
 * Reverse lookups of endpoint addresses (in-addr.arpa, ip6.arpa). The answer is the container's
 * name with the network's name appended, `web.front.`, as Docker answers (libnetwork
 * Network.ResolveIP); an address on several of the sandbox's networks answers once per network.
 * VIPs have no PTR record (as in libnetwork). Unknown addresses go on to the upstreams.
 */
export const ptr: PluginFactory = (ctx) => (next) => (req) => {
  const c = req.candidates[0]!;
  if (c.name.endsWith('.in-addr.arpa') || c.name.endsWith('.ip6.arpa')) {
    for (const net of c.networks) {
      const eps = req.table.endpointsByAddress(net, c.name);
      if (!eps) continue;
      for (const ep of eps) {
        if (!ep.ptrName) continue;
        c.known = true;
        if (wants(req.type, TYPE.PTR)) addRecord(c.answers, ptrRr(req.lname, `${ep.ptrName}.${net}`, ctx.ttl));
      }
    }
  }
  return next(req);
};
