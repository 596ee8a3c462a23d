import { addRecord, type PluginFactory } from '../chain.js';
import { addressRr } from '../rr.js';
import { wantsAddress } from './wants.js';

const PREFIX = 'tasks.';

/**
 * `tasks.<service>`: the address of every ready task, whatever the service's mode, so a client
 * can balance by itself. A service with no ready task still owns the name: NOERROR, no answer,
 * rather than a trip upstream (libnetwork forwards it).
 */
export const tasks: PluginFactory = (ctx) => (next) => (req) => {
  for (const c of req.candidates) {
    if (!c.name.startsWith(PREFIX)) continue;
    const svcName = c.name.slice(PREFIX.length);
    for (const net of c.networks) {
      const svcs = req.table.services(net, svcName);
      if (!svcs) continue;
      c.known = true;
      for (const t of svcs.flatMap((s) => s.tasks)) {
        for (const a of t.addresses)
          if (wantsAddress(req.type, a)) addRecord(c.answers, addressRr(req.lname, a, ctx.ttl));
      }
    }
  }
  return next(req);
};
