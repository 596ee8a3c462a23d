import { afterEach, describe, expect, it } from 'vitest';
import { DnsServer } from '../src/index.js';
import { decodeExact, encode, encodeQuery, type Message } from '../src/internal.js';
import { FakeTransport } from './fake-transport.js';
import { padded } from './helpers.js';

// The replies the server makes itself. Docker sets RA on its answers only; an error carries no
// records (ANCOUNT and NSCOUNT 0 whatever the query said) and nothing in the additional section
// but our OPT record. Each reply must decode to exactly its header's counts.

const servers: DnsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(forward: boolean) {
  const server = new DnsServer({ upstreams: [], ttl: 60 });
  servers.push(server);
  server.table.upsertEndpoint({ network: 'front', id: 'c1', name: 'web', addresses: ['10.0.0.2'] });
  const udp = new FakeTransport();
  server.addSandbox('sb', { udp, networks: ['front'], forward });
  await server.start();
  return udp;
}

/** A query with its header patched and bytes appended. */
function query(header: Record<number, number>, tail: number[] = [], q = encodeQuery('web', 'A', { id: 0x4242 })) {
  const b = Buffer.concat([q, Buffer.from(tail)]);
  for (const [at, v] of Object.entries(header)) b[Number(at)] = v;
  return b;
}

const opt = { type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [] } as never;
const twoOpts = encode({ type: 'query', id: 0x4242, questions: [{ name: 'web', type: 'A' }], additionals: [opt, opt] });

/** Header counts as sent: QD, AN, NS, AR. */
const counts = (b: Buffer) => [4, 6, 8, 10].map((o) => b.readUInt16BE(o));

describe('error replies', () => {
  it.each<[string, Buffer, string, boolean]>([
    // name, query, rcode, whether the question comes back
    ['a garbage answer section', query({ 7: 1 }, [0xde, 0xad, 0xbe, 0xef, 0x01]), 'FORMERR', true],
    ['ANCOUNT 1 and nothing after the question', query({ 7: 1 }), 'FORMERR', true],
    ['NSCOUNT 2 and a cut record', query({ 9: 2 }, [0, 0, 1, 0, 1, 0]), 'FORMERR', true],
    ['two OPT records', twoOpts, 'FORMERR', true],
    ['QDCOUNT 0 and ANCOUNT 3', query({ 5: 0, 7: 3 }), 'FORMERR', false],
    ['a label past the end', query({ 12: 60, 7: 1 }), 'FORMERR', false],
    ['opcode NOTIFY and ANCOUNT 1', query({ 2: 0x21, 7: 1 }), 'NOTIMP', false],
  ])('%s: %s, no RA, no records', async (_, packet, rcode, echoed) => {
    const udp = await serve(false);
    const reply = udp.ask(packet)!;
    const m = decodeExact(reply);
    expect(m).toMatchObject({ id: 0x4242, rcode, flag_ra: false, flag_aa: false });
    expect(counts(reply)).toEqual([echoed ? 1 : 0, 0, 0, 0]);
    if (echoed) expect(m.questions).toEqual([{ name: 'web', type: 'A', class: 'IN' }]);
  });

  it('answers FORMERR to a UDP query over 512 bytes without EDNS (RFC 1035 4.2.1), as Docker', async () => {
    const udp = await serve(false);
    const reply = udp.ask(padded(513))!;
    expect(decodeExact(reply)).toMatchObject({ rcode: 'FORMERR', flag_ra: false, questions: [{ name: 'web' }] });
    expect(counts(reply)).toEqual([1, 0, 0, 0]);
    expect(decodeExact(udp.ask(padded(512))!)).toMatchObject({ rcode: 'NOERROR', answers: [{ data: '10.0.0.2' }] });
    // EDNS announces a larger size: the query may be larger too.
    expect(decodeExact(udp.ask(padded(900, true))!)).toMatchObject({
      rcode: 'NOERROR',
      answers: [{ data: '10.0.0.2' }],
    });
  });

  it('keeps the opcode of a NOTIMP, and RD and CD of the query', async () => {
    const udp = await serve(false);
    const m = decodeExact(udp.ask(query({ 2: 0x21, 3: 0x10 }))!);
    expect(m).toMatchObject({ opcode: 'NOTIFY', rcode: 'NOTIMP', flag_rd: true, flag_cd: true, flag_ra: false });
  });

  it('answers BADVERS with our OPT record alone (RFC 6891 6.1.3)', async () => {
    const udp = await serve(false);
    const q = encodeQuery('web', 'A', { id: 0x4242, edns: 1232 });
    q[q.length - 5] = 1; // EDNS version 1
    const reply = udp.ask(query({ 7: 0 }, [], q))!;
    const m = decodeExact(reply);
    expect(m).toMatchObject({ flag_ra: false, answers: [], authorities: [] });
    expect(m.additionals).toMatchObject([{ type: 'OPT', extendedRcode: 1, udpPayloadSize: 1232 }]);
    expect(counts(reply)).toEqual([1, 0, 0, 1]);
  });

  it.each<[string, boolean, string, string, Message['rcode']]>([
    ['a name outside the table, forwarding off', false, 'nothere', 'A', 'REFUSED'],
    ['a name outside the table, no upstream answers', true, 'nothere', 'A', 'SERVFAIL'],
    ['AXFR of a table name', false, 'web', 'AXFR', 'NOTIMP'],
    ['IXFR of a table name', false, 'web', 'IXFR', 'NOTIMP'],
  ])('%s: %s, no RA, no records', async (_, forward, name, type, rcode) => {
    const udp = await serve(forward);
    for (const edns of [undefined, 1232]) {
      const reply = await udp.query(encodeQuery(name, type, { id: 0x4242, edns }));
      const m = decodeExact(reply);
      expect(m).toMatchObject({ id: 0x4242, rcode, flag_ra: false, flag_rd: true, answers: [], authorities: [] });
      expect(m.additionals?.map((a) => a.type)).toEqual(edns ? ['OPT'] : []);
    }
  });

  it('sets RA on answers, an empty one too', async () => {
    const udp = await serve(false);
    expect(decodeExact(udp.ask(encodeQuery('web', 'A'))!)).toMatchObject({ rcode: 'NOERROR', flag_ra: true });
    expect(decodeExact(udp.ask(encodeQuery('web', 'TXT'))!)).toMatchObject({ rcode: 'NOERROR', flag_ra: true });
  });
});
