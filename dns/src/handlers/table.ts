import type { PluginFactory } from '../chain.js';
import { RCODE } from '../wire.js';

/**
 * Ends the name table's part of the chain: the first reading of the name that a handler knows
 * is the answer, NOERROR even with no record of the asked type (never forwarded); names the
 * table does not hold go on to cache and forward. Meta queries other than ANY (AXFR, IXFR,
 * MAILA, MAILB: RFC 1035 3.2.3) are not implemented for the table's names.
 */
export const table: PluginFactory = () => (next) => (req) => {
  const c = req.candidates.find((x) => x.known);
  if (!c) return next(req);
  if (req.type >= 128 && req.type < 255) return { source: 'table', rcode: RCODE.NOTIMP, answers: [], additionals: [] };
  return { source: 'table', rcode: RCODE.NOERROR, answers: c.answers, additionals: c.additionals };
};
