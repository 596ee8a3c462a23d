import { describe, expect, it } from 'vitest';
import { ndots } from '../../src/handlers/ndots.js';
import { DnsServer, type Reply, type Request } from '../../src/index.js';
import { decodeExact, type Exchange, encodeQuery, TYPE, wireKey } from '../../src/internal.js';
import { FakeTransport } from '../fake-transport.js';

const NEXT: Reply = { source: 'upstream', rcode: 3 };

/** What the ndots handler does with a name outside the table: 'empty' or 'next'. */
function run(n: number | undefined, name: string, type: number): 'empty' | 'next' {
  const lname = name.toLowerCase();
  const req = {
    lname,
    key: wireKey(lname),
    type,
    class: 1,
    sandbox: { id: 's', networks: [], upstreams: [], forward: true, ndots: n, inflight: 0 },
  } as unknown as Request;
  const r = ndots({ ttl: 600 } as never)(() => NEXT)(req) as Reply;
  if (r === NEXT) return 'next';
  expect(r).toEqual({ source: 'server', rcode: 0 });
  return 'empty';
}

describe('ndots: single labels outside the table, when resolv.conf sets ndots (libnetwork)', () => {
  it.each<[number | undefined, string, number, 'empty' | 'next']>([
    [1, 'nothere', TYPE.A, 'empty'],
    [5, 'NotHere', TYPE.AAAA, 'empty'],
    [1, '', TYPE.A, 'empty'], // the root has no dot either (libnetwork trims the final one)
    [1, 'nothere', TYPE.TXT, 'next'],
    [1, 'nothere', TYPE.MX, 'next'],
    [1, 'nothere', TYPE.ANY, 'next'],
    [1, 'nothere', TYPE.PTR, 'next'],
    [1, 'x.test', TYPE.A, 'next'],
    [1, 'example.com', TYPE.AAAA, 'next'],
    // ndots:0 and no ndots: forwarded (Docker also empties these for an explicit ndots:0).
    [0, 'nothere', TYPE.A, 'next'],
    [undefined, 'nothere', TYPE.A, 'next'],
  ])('ndots %s, %j type %i: %s', (n, name, type, expected) => {
    expect(run(n, name, type)).toBe(expected);
  });

  it('leaves a single label holding a dot to the upstreams, as libnetwork (it sees `a\\.b.`)', () => {
    const req = {
      lname: '\x03a.b', // fromWireKey fails: the server passes the wire key on
      type: TYPE.A,
      sandbox: { ndots: 2 },
    } as unknown as Request;
    expect(ndots({ ttl: 600 } as never)(() => NEXT)(req)).toBe(NEXT);
  });
});

describe('ndots in the server', () => {
  async function serve(n: number | undefined) {
    const forwarded: string[] = [];
    const exchange: Exchange = async (u, query) => {
      forwarded.push(`${decodeExact(query).questions![0]!.name}@${u.host}`);
      throw new Error('not in this test');
    };
    const server = new DnsServer({ upstreams: ['192.0.2.1'], exchange });
    server.table.upsertEndpoint({ network: 'front', id: 'c1', name: 'web', addresses: ['10.0.0.2'] });
    const udp = new FakeTransport();
    server.addSandbox('sb', { udp, networks: ['front'], ndots: n });
    await server.start();
    return { server, udp, forwarded };
  }

  it('answers a table name as ever, and another single label NOERROR, empty, with RA, unforwarded', async () => {
    const { server, udp, forwarded } = await serve(2);
    expect(decodeExact(udp.ask(encodeQuery('web', 'A'))!).answers).toMatchObject([{ data: '10.0.0.2' }]);
    const r = decodeExact(await udp.query(encodeQuery('NotHere', 'AAAA', { id: 9, edns: 1232 })));
    expect(r).toMatchObject({ id: 9, rcode: 'NOERROR', flag_ra: true, answers: [], authorities: [] });
    expect(r.questions).toEqual([{ name: 'NotHere', type: 'AAAA', class: 'IN' }]);
    expect(r.additionals?.map((a) => a.type)).toEqual(['OPT']);
    expect(forwarded).toEqual([]);
    await server.close();
  });

  it('follows configureSandbox: ndots set, changed, removed', async () => {
    const { server, udp, forwarded } = await serve(undefined);
    await udp.query(encodeQuery('one', 'A'));
    server.configureSandbox('sb', { ndots: 1 });
    expect(decodeExact(await udp.query(encodeQuery('two', 'A'))).rcode).toBe('NOERROR');
    server.configureSandbox('sb', { forward: true }); // another key: ndots stays
    expect(decodeExact(await udp.query(encodeQuery('three', 'A'))).rcode).toBe('NOERROR');
    server.configureSandbox('sb', { ndots: undefined });
    await udp.query(encodeQuery('four', 'A'));
    expect(forwarded).toEqual(['one@192.0.2.1', 'four@192.0.2.1']);
    await server.close();
  });

  it.each([-1, 1.5, '2', Number.NaN])('refuses ndots %j, and changes nothing', async (bad) => {
    const { server, udp, forwarded } = await serve(1);
    expect(() => server.configureSandbox('sb', { ndots: bad as number, upstreams: ['192.0.2.9'] })).toThrow(
      expect.objectContaining({ code: 'DNS_INVALID_OPTION' }),
    );
    expect(() => server.addSandbox('other', { networks: [], ndots: bad as number })).toThrow(
      expect.objectContaining({ code: 'DNS_INVALID_OPTION' }),
    );
    expect(server.sandboxes()).toEqual(['sb']);
    expect(decodeExact(await udp.query(encodeQuery('x', 'A'))).rcode).toBe('NOERROR');
    await udp.query(encodeQuery('x.test', 'A'));
    expect(forwarded).toEqual(['x.test@192.0.2.1']);
    await server.close();
  });
});
