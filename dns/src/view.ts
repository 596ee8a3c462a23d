import { candidates, type Handler, type SandboxContext } from './chain.js';
import { fromWireKey } from './dns-name.js';
import { type Prepared, prepare } from './prepared.js';
import { CLASS_IN } from './rr.js';
import { RequestStats } from './stats.js';
import { depKey, type NameTable } from './table/name-table.js';
import type { TableReader } from './table/types.js';

/**
 * Types whose prepared answers are kept; others are prepared per query, so a client asking
 * every type of every name cannot grow memory without bound.
 */
const KEPT_TYPES = new Set([1, 2, 5, 6, 12, 15, 16, 28, 33, 65, 255]);

/**
 * What the name table answers to sandboxes on one set of networks, prepared for the fast path:
 * wire key → type → encoded answer. An answer is prepared when first asked and kept with the
 * table lookups it made; when the table changes one of those, the answer is prepared again at
 * once (or dropped, when the name is gone), so a lookup never sees a stale or half-done answer.
 */
export class View {
  readonly networks: readonly string[];
  readonly #table: NameTable;
  readonly #local: Handler;
  readonly #entries = new Map<string, Map<number, Prepared>>();
  /** Table lookup (depKey) → wire keys of the answers that made it. */
  readonly #deps = new Map<string, Set<string>>();
  readonly #entryDeps = new Map<string, Set<string>>();
  readonly #sandbox: SandboxContext;
  refs = 0;
  /** What was answered to the sandboxes that see this view (counted with DnsServerOptions.metrics). */
  readonly stats = new RequestStats();

  /** local: the table's part of the chain, ending in a handler for names it does not hold. */
  constructor(networks: readonly string[], table: NameTable, local: Handler) {
    this.networks = networks;
    this.#table = table;
    this.#local = local;
    this.#sandbox = {
      id: '',
      networks,
      upstreams: [],
      forward: false,
      ndots: undefined,
      sockets: undefined,
      route: '',
      inflight: 0,
    };
  }

  /** The fast path: a prepared answer or undefined. */
  lookup(key: string, type: number): Prepared | undefined {
    return this.#entries.get(key)?.get(type);
  }

  /** Runs the table's handlers for the name; undefined when the table does not hold it. */
  prepare(key: string, type: number): Prepared | undefined {
    const lname = fromWireKey(key);
    if (lname === undefined) return undefined;
    const deps = new Set<string>();
    const reply = this.#local({
      lname,
      key,
      type,
      class: CLASS_IN,
      sandbox: this.#sandbox,
      table: recorder(this.#table, deps),
      candidates: candidates(lname, this.networks),
      question: Buffer.alloc(0),
      tcp: false,
      flags: 0,
      edns: undefined,
    });
    if (reply instanceof Promise || reply.source !== 'table') return undefined;
    const p = prepare(reply.rcode, reply.answers ?? [], reply.additionals ?? [], lname);
    if (KEPT_TYPES.has(type)) this.#keep(key, type, p, deps);
    return p;
  }

  /** Table changes (depKeys): prepares again every kept answer that looked at one of them. */
  refresh(changed: ReadonlySet<string>): void {
    const stale = new Set<string>();
    for (const d of changed) for (const key of this.#deps.get(d) ?? []) stale.add(key);
    for (const key of stale) {
      const types = [...(this.#entries.get(key)?.keys() ?? [])];
      this.#forget(key);
      for (const t of types) this.prepare(key, t);
    }
  }

  /** Prepared answers kept (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const m of this.#entries.values()) n += m.size;
    return n;
  }

  #keep(key: string, type: number, p: Prepared, deps: Set<string>): void {
    let m = this.#entries.get(key);
    if (!m) this.#entries.set(key, (m = new Map()));
    m.set(type, p);
    let mine = this.#entryDeps.get(key);
    if (!mine) this.#entryDeps.set(key, (mine = new Set()));
    for (const d of deps) {
      mine.add(d);
      let keys = this.#deps.get(d);
      if (!keys) this.#deps.set(d, (keys = new Set()));
      keys.add(key);
    }
  }

  #forget(key: string): void {
    this.#entries.delete(key);
    for (const d of this.#entryDeps.get(key) ?? []) {
      const keys = this.#deps.get(d);
      keys?.delete(key);
      if (keys?.size === 0) this.#deps.delete(d);
    }
    this.#entryDeps.delete(key);
  }
}

function recorder(t: NameTable, deps: Set<string>): TableReader {
  return {
    endpointsByName(n, l) {
      deps.add(depKey('n', n, l));
      return t.endpointsByName(n, l);
    },
    endpointsByAddress(n, l) {
      deps.add(depKey('p', n, l));
      return t.endpointsByAddress(n, l);
    },
    services(n, l) {
      deps.add(depKey('s', n, l));
      return t.services(n, l);
    },
  };
}
