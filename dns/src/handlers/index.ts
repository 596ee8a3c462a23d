import type { PluginFactory } from '../chain.js';
import { cache } from './cache.js';
import type { ServerContext } from './context.js';
import { forward } from './forward.js';
import { names } from './names.js';
import { ndots } from './ndots.js';
import { ptr } from './ptr.js';
import { services } from './services.js';
import { srv } from './srv.js';
import { table } from './table.js';
import { tasks } from './tasks.js';

/**
 * The chain, in order (CoreDNS plugin.cfg). The handlers before `table` read the name table and
 * add what they hold for the name; `table` answers if any of them knew it. The rest serve the
 * names the table does not hold: `ndots` answers some single labels empty, as libnetwork does
 * before it forwards; `cache` and `forward` the others. Everything up to `table` is synchronous,
 * so table answers can be prepared ahead and returned at once; what follows is per sandbox.
 */
export const CHAIN: readonly PluginFactory<ServerContext>[] = [
  names,
  services,
  tasks,
  ptr,
  srv,
  table,
  ndots,
  cache,
  forward,
];

/** How many of CHAIN belong to the name table (up to and including `table`). */
export const TABLE_PART = CHAIN.indexOf(table) + 1;
