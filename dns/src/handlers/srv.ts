import { addRecord, type PluginFactory } from '../chain.js';
import { addressRr, srvRr, TYPE } from '../rr.js';
import { wants } from './wants.js';

/**
 * `_<port>._<proto>.<service>` (RFC 2782) for services that name their ports: one SRV record
 * per ready task, target the task's name, its addresses in the additional section. libnetwork
 * answers these with an RR header of type PTR (12) over SRV data, which clients reject; these
 * are proper SRV records (type 33). A service without that port leaves the name to the upstreams.
 */
export const srv: PluginFactory = (ctx) => (next) => (req) => {
  const c = req.candidates[0]!;
  const m = /^_([^.]+)\._(tcp|udp)\.(.+)$/.exec(c.name);
  if (m) {
    const [, portName, proto, svcName] = m;
    for (const net of c.networks) {
      for (const svc of req.table.services(net, svcName!) ?? []) {
        const port = svc.ports.find((p) => p.name.toLowerCase() === portName && p.protocol === proto);
        if (!port) continue;
        c.known = true;
        if (!wants(req.type, TYPE.SRV)) continue;
        for (const t of svc.tasks) {
          addRecord(c.answers, srvRr(req.lname, port.port, t.name, ctx.ttl));
          for (const a of t.addresses) addRecord(c.additionals, addressRr(t.name, a, ctx.ttl));
        }
      }
    }
  }
  return next(req);
};
