import { addRecord, type PluginFactory } from '../chain.js';
import { addressRr } from '../rr.js';
import { wantsAddress } from './wants.js';

/**
 * Container names, network aliases, short ids and hostnames: A and AAAA records of the
 * endpoints that answer to the name on each network of the sandbox (libnetwork's svcMap).
 */
export const names: PluginFactory = (ctx) => (next) => (req) => {
  for (const c of req.candidates) {
    for (const net of c.networks) {
      const eps = req.table.endpointsByName(net, c.name);
      if (!eps) continue;
      c.known = true;
      for (const ep of eps) {
        for (const a of ep.addresses)
          if (wantsAddress(req.type, a)) addRecord(c.answers, addressRr(req.lname, a, ctx.ttl));
      }
    }
  }
  return next(req);
};
