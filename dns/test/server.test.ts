import { afterEach, describe, expect, it } from 'vitest';
import { DnsServer } from '../src/index.js';
import { answerLines, decode, decodeExact, encodeQuery } from '../src/internal.js';
import { FakeTransport } from './fake-transport.js';
import { codeOf } from './helpers.js';

const servers: DnsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(networks = ['front'], opts: { forward?: boolean } = {}) {
  const server = new DnsServer({ upstreams: [], ttl: 60 });
  servers.push(server);
  server.table.upsertEndpoint({ network: 'front', id: 'c1', name: 'web', aliases: ['www'], addresses: ['10.0.0.2'] });
  const udp = new FakeTransport();
  server.addSandbox('sb', { udp, networks, forward: opts.forward ?? false });
  await server.start();
  const ask = (name: string, type = 'A', o: { id?: number; edns?: number } = {}) =>
    decode(udp.ask(encodeQuery(name, type, o))!);
  const query = async (name: string, type = 'A') => decode(await udp.query(encodeQuery(name, type)));
  return { server, udp, ask, query };
}

describe('DnsServer (in process)', () => {
  it('answers a table name synchronously, with the asker ID and case, RA set and AA clear', async () => {
    const { ask } = await serve();
    const r = ask('WeB', 'A', { id: 777 });
    expect(r).toMatchObject({ id: 777, rcode: 'NOERROR', flag_ra: true, flag_aa: false, flag_rd: true });
    expect(r.questions?.[0]?.name).toBe('WeB');
    expect(r.answers?.[0]).toMatchObject({ name: 'WeB', ttl: 60, data: '10.0.0.2' });
  });

  it('answers EDNS queries with an OPT record', async () => {
    const { ask } = await serve();
    expect(ask('web', 'A', { edns: 4096 }).additionals?.[0]).toMatchObject({ type: 'OPT', udpPayloadSize: 1232 });
  });

  it('follows table changes at once: a removed container stops resolving', async () => {
    const { server, ask, query } = await serve();
    expect(answerLines(ask('web'))).toEqual(['A 10.0.0.2']);
    server.table.upsertEndpoint({ network: 'front', id: 'c1', name: 'web', addresses: ['10.0.0.9'] });
    expect(answerLines(ask('web'))).toEqual(['A 10.0.0.9']);
    server.table.removeEndpoint('front', 'c1');
    expect((await query('web')).rcode).toBe('REFUSED'); // forwarding is off for this sandbox
  });

  it('sees the networks the sandbox is on now', async () => {
    const { server, ask, query } = await serve(['back']);
    expect((await query('web')).rcode).toBe('REFUSED');
    server.setNetworks('sb', ['back', 'front']);
    expect(answerLines(ask('web'))).toEqual(['A 10.0.0.2']);
  });

  it.each([
    ['a short header', Buffer.alloc(5), undefined],
    ['a response', Buffer.from([0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0]), undefined],
    ['opcode NOTIFY', Buffer.from([0, 1, 0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0]), 'NOTIMP'],
    ['no question', Buffer.from([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 'FORMERR'],
  ])('answers %s with %s', async (_, packet, rcode) => {
    const { udp } = await serve();
    const reply = udp.ask(packet);
    if (rcode === undefined) expect(reply).toBeUndefined();
    else expect(decode(reply!)).toMatchObject({ id: 1, rcode });
  });

  it('answers BADVERS to EDNS version 1 (RFC 6891 6.1.3)', async () => {
    const { udp } = await serve();
    const q = encodeQuery('web', 'A', { edns: 1232 });
    q[q.length - 5] = 1;
    const r = decode(udp.ask(q)!);
    expect(r.additionals?.[0]).toMatchObject({ type: 'OPT', extendedRcode: 1 });
  });

  it.each([
    ['CH', 3],
    ['ANY', 255],
    ['NONE', 254],
    ['0', 0],
  ])(
    'answers A web in class %s from the table, IN records, the question as asked (Docker ignores the class)',
    async (_, cls) => {
      const { udp } = await serve();
      const q = encodeQuery('WeB', 'A', { id: 5 });
      q.writeUInt16BE(cls, q.length - 2);
      const r = decodeExact(udp.ask(q)!);
      expect(r).toMatchObject({ id: 5, rcode: 'NOERROR', flag_ra: true });
      expect(r.questions).toEqual([
        { name: 'WeB', type: 'A', class: cls === 3 ? 'CH' : cls === 255 ? 'ANY' : `UNKNOWN_${cls}` },
      ]);
      expect(r.answers).toMatchObject([{ name: 'WeB', type: 'A', class: 'IN', data: '10.0.0.2' }]);
    },
  );

  it('answers NOTIMP to AXFR of a table name, and A+AAAA to ANY', async () => {
    const { ask } = await serve();
    expect(ask('web', 'AXFR').rcode).toBe('NOTIMP');
    expect(answerLines(ask('web', 'ANY'))).toEqual(['A 10.0.0.2']);
  });

  it('refuses a second sandbox of the same id, and options out of range', async () => {
    const { server } = await serve();
    expect(await codeOf(() => server.addSandbox('sb', { networks: [] }))).toBe('DNS_SANDBOX_EXISTS');
    expect(await codeOf(() => server.setNetworks('nope', []))).toBe('DNS_SANDBOX_NOT_FOUND');
    expect(await codeOf(() => new DnsServer({ ttl: -1 }))).toBe('DNS_INVALID_OPTION');
    expect(await codeOf(() => new DnsServer({ upstreams: ['not an ip'] }))).toBe('DNS_INVALID_UPSTREAM');
  });

  it('closes the transports it was handed, and close is idempotent', async () => {
    const { server, udp } = await serve();
    await server.close();
    await server.close();
    expect(udp.closed).toBe(true);
    expect(await codeOf(() => server.addSandbox('x', { networks: [] }))).toBe('DNS_CLOSED');
  });
});
