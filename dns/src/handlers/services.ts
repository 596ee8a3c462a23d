import { addRecord, type PluginFactory } from '../chain.js';
import { addressRr } from '../rr.js';
import { wantsAddress } from './wants.js';

/**
 * `<service>` (and its aliases): the service's VIPs, or in `dnsrr` mode the addresses of its
 * ready tasks and no VIP (libnetwork addEndpointNameResolution).
 */
export const services: PluginFactory = (ctx) => (next) => (req) => {
  for (const c of req.candidates) {
    for (const net of c.networks) {
      const svcs = req.table.services(net, c.name);
      if (!svcs) continue;
      c.known = true;
      for (const svc of svcs) {
        const addrs = svc.mode === 'vip' ? svc.vips : svc.tasks.flatMap((t) => t.addresses);
        for (const a of addrs) if (wantsAddress(req.type, a)) addRecord(c.answers, addressRr(req.lname, a, ctx.ttl));
      }
    }
  }
  return next(req);
};
