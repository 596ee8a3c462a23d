import { type Handler, NameTable, type Request } from '../src/index.js';
import {
  type Candidate,
  CHAIN,
  candidates,
  compose,
  encode,
  rrText,
  type ServerContext,
  TABLE_PART,
  wireKey,
} from '../src/internal.js';

/** A table answer as a user reads it, or 'not held' when the table leaves the name to upstreams. */
export interface Resolved {
  rcode: number;
  answers: string[];
  additionals: string[];
}

const NOT_HELD: Handler = () => ({ source: 'server', rcode: -1 });

/** Runs the name table's part of the chain for one question, as a sandbox on `networks` asks it. */
export function resolve(table: NameTable, networks: string[], name: string, type: number): Resolved | 'not held' {
  const ctx = { ttl: 600, cache: undefined, forwarder: undefined as never, maxInflight: 1 } satisfies ServerContext;
  const local = compose(
    CHAIN.slice(0, TABLE_PART).map((f) => f(ctx)),
    NOT_HELD,
  );
  const lname = name.toLowerCase();
  const req: Request = {
    lname,
    key: wireKey(lname),
    type,
    class: 1,
    sandbox: {
      id: 't',
      networks,
      upstreams: [],
      forward: true,
      ndots: undefined,
      sockets: undefined,
      route: '',
      inflight: 0,
    },
    table,
    candidates: candidates(lname, networks) as Candidate[],
    question: Buffer.alloc(0),
    tcp: false,
    flags: 0,
    edns: undefined,
  };
  const r = local(req);
  if (r instanceof Promise) throw new Error('the table part must be synchronous');
  if (r.rcode < 0) return 'not held';
  return {
    rcode: r.rcode,
    answers: (r.answers ?? []).map(rrText).sort(),
    additionals: (r.additionals ?? []).map(rrText).sort(),
  };
}

/** A table with a few containers and services on networks front and back. */
export function sampleTable(): NameTable {
  const t = new NameTable();
  t.batch((tx) => {
    tx.upsertEndpoint({
      network: 'front',
      id: '0123456789abcdef0123',
      name: 'web',
      aliases: ['www'],
      hostname: 'webhost',
      addresses: ['10.0.0.2', 'fd00::2'],
    });
    tx.upsertEndpoint({ network: 'front', id: 'c2', name: 'cache', addresses: ['10.0.0.3'] });
    tx.upsertEndpoint({ network: 'back', id: 'c3', name: 'db', aliases: ['www'], addresses: ['10.1.0.2'] });
    tx.upsertEndpoint({ network: 'back', id: 'c4', name: 'web', addresses: ['10.1.0.9'] });
    tx.upsertService({
      network: 'front',
      name: 'api',
      aliases: ['rest'],
      vips: ['10.0.0.100'],
      ports: [{ name: 'http', protocol: 'tcp', port: 8080 }],
      tasks: [
        { name: 'api.1.aaa', addresses: ['10.0.0.11'] },
        { name: 'api.2.bbb', addresses: ['10.0.0.12'] },
        { name: 'api.3.ccc', addresses: ['10.0.0.13'], ready: false },
      ],
    });
    tx.upsertService({
      network: 'front',
      name: 'rr',
      mode: 'dnsrr',
      tasks: [
        { name: 'rr.1.x', addresses: ['10.0.0.21'] },
        { name: 'rr.2.y', addresses: ['10.0.0.22', 'fd00::22'] },
      ],
    });
  });
  return t;
}

/** A query for web A of exactly `total` bytes: a NULL record (RFC 1035 3.3.10) in the additional section pads it. */
export function padded(total: number, edns = false): Buffer {
  const opt = { type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [] } as never;
  const make = (n: number) =>
    encode({
      type: 'query',
      id: 0x4242,
      flags: 0x0100,
      questions: [{ name: 'web', type: 'A' }],
      additionals: [{ type: 'NULL', name: 'pad', ttl: 0, data: Buffer.alloc(n) } as never, ...(edns ? [opt] : [])],
    });
  const b = make(total - make(0).length);
  if (b.length !== total) throw new Error(`padded to ${b.length}, not ${total}`);
  return b;
}

/** Resolves to the error's code, or fails when nothing throws. */
export async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  throw new Error('expected an error');
}
