import { afterEach, describe, expect, it } from 'vitest';
import { DnsServer } from '../src/index.js';
import { decodeExact } from '../src/internal.js';
import { padded, sampleTable } from './helpers.js';
import { addLoopbackSandbox, Cleanup, dig, digShort, digStatus, tcpExchange, udpExchange } from './net-helpers.js';

// What a container sees through dig, against a server on real loopback sockets. Forwarding is
// off (or points at nothing) here: these names are all the table's.

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function serve(networks: string[], sandboxes: Record<string, string[]> = {}) {
  const server = new DnsServer({ table: sampleTable(), upstreams: [] });
  cleanup.add(() => server.close());
  const port = await addLoopbackSandbox(server, 'sb', { networks, forward: false });
  const others: Record<string, number> = {};
  for (const [id, nets] of Object.entries(sandboxes)) {
    others[id] = await addLoopbackSandbox(server, id, { networks: nets, forward: false });
  }
  await server.start();
  return { server, port, others };
}

describe('the embedded DNS server, as dig sees it', () => {
  it.each([
    ['web', 'A', ['10.0.0.2', '10.1.0.9']], // on both networks of the sandbox: both answer
    ['web', 'AAAA', ['fd00::2']],
    ['webhost', 'A', ['10.0.0.2']],
    ['0123456789ab', 'A', ['10.0.0.2']],
    ['api', 'A', ['10.0.0.100']],
    ['tasks.api', 'A', ['10.0.0.11', '10.0.0.12']],
    ['rr', 'A', ['10.0.0.21', '10.0.0.22']],
    ['web.back', 'A', ['10.1.0.9']],
    ['www', 'A', ['10.0.0.2', '10.1.0.2']],
  ])('%s %s → %j', async (name, type, expected) => {
    const { port } = await serve(['front', 'back']);
    expect(await digShort(port, name, type)).toEqual(expected);
  });

  it('keeps the asker case in the answer (RFC 4343)', async () => {
    const { port } = await serve(['front']);
    expect(await dig(port, '+noall', '+answer', 'WeB.FrOnT')).toMatch(/^WeB\.FrOnT\.\s+600\s+IN\s+A\s+10\.0\.0\.2$/m);
  });

  // BIND's parser (dig's) wants an answer's class to be the question's unless that is ANY, so it
  // warns of a malformed message for IN records under a CH, NONE or 0 question, and prints them.
  it.each([
    ['CH', true],
    ['ANY', false],
    ['NONE', true],
    ['CLASS0', true],
  ])('answers web in class %s from the table with IN records, as Docker (dig warns: %s)', async (cls, warns) => {
    const { port } = await serve(['front']);
    const out = await dig(port, '-c', cls, 'web');
    expect(out).toMatch(/status: NOERROR,/);
    expect(out).toMatch(/^;web\.\s+(CH|ANY|NONE|RESERVED0)\s+A$/m);
    expect(out).toMatch(/^web\.\s+600\s+IN\s+A\s+10\.0\.0\.2$/m);
    expect(/malformed/.test(out)).toBe(warns);
  });

  it('answers a known name with no record of the type: NOERROR, no answer', async () => {
    const { port } = await serve(['front']);
    const out = await dig(port, 'cache', 'AAAA');
    expect(out).toMatch(/status: NOERROR/);
    expect(out).toMatch(/ANSWER: 0/);
  });

  it('is not authoritative and offers recursion, as Docker', async () => {
    const { port } = await serve(['front']);
    expect(await dig(port, 'web')).toMatch(/flags: qr rd ra;/);
  });

  it.each([
    ['a query with no question', ['+header-only', 'web'], 'QUERY', 'FORMERR', 0],
    ['opcode NOTIFY', ['+opcode=notify', 'web'], 'NOTIFY', 'NOTIMP', 0],
    ['EDNS version 1', ['+edns=1', '+noednsnegotiation', 'web'], 'QUERY', 'BADVERS', 1],
    ['a name outside the table, forwarding off', ['nothere'], 'QUERY', 'REFUSED', 1],
  ])('answers %s with %s and %s: no RA, no records, well-formed', async (_, args, opcode, status, qd) => {
    const { port } = await serve(['front']);
    const out = await dig(port, ...args);
    expect(out).toMatch(new RegExp(`opcode: ${opcode}, status: ${status},`));
    expect(out).toMatch(new RegExp(`flags: qr rd; QUERY: ${qd}, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: [01]$`, 'm'));
    // What dig says of a reply that does not parse, or parses with bytes left over.
    expect(out).not.toMatch(/bad packet|extra bytes|WARNING: Message/i);
  });

  it('answers a 600-byte query without EDNS with FORMERR over UDP, and in full over TCP', async () => {
    const { port } = await serve(['front']);
    const q = padded(600);
    expect(decodeExact(await udpExchange(port, q))).toMatchObject({ rcode: 'FORMERR', flag_ra: false, answers: [] });
    expect(decodeExact(await tcpExchange(port, q))).toMatchObject({
      rcode: 'NOERROR',
      answers: [{ data: '10.0.0.2' }],
    });
    expect(decodeExact(await udpExchange(port, padded(600, true)))).toMatchObject({ rcode: 'NOERROR' });
  });

  it('rotates multi-address answers (round robin)', async () => {
    const { port } = await serve(['front']);
    const firsts = new Set<string>();
    for (let i = 0; i < 4; i++) firsts.add((await dig(port, '+short', 'tasks.api')).split('\n')[0]!);
    expect([...firsts].sort()).toEqual(['10.0.0.11', '10.0.0.12']);
  });

  it('answers PTR with name.network, and SRV with type 33 records and their addresses', async () => {
    const { port } = await serve(['front']);
    expect(await digShort(port, '-x', '10.0.0.2')).toEqual(['web.front.']);
    const srv = await dig(port, '+noall', '+answer', '+additional', '_http._tcp.api', 'SRV');
    expect(srv).toMatch(/^_http\._tcp\.api\.\s+600\s+IN\s+SRV\s+0 0 8080 api\.1\.aaa\.$/m);
    expect(srv).toMatch(/^api\.2\.bbb\.\s+600\s+IN\s+A\s+10\.0\.0\.12$/m);
  });

  it('scopes names to the asking sandbox networks', async () => {
    const { port, others } = await serve(['front'], { onBack: ['back'] });
    expect(await digShort(port, 'db')).toEqual([]);
    expect(await digStatus(port, 'db')).toBe('REFUSED'); // not ours, and no forwarding
    expect(await digShort(others.onBack!, 'db')).toEqual(['10.1.0.2']);
    expect(await digShort(others.onBack!, 'web')).toEqual(['10.1.0.9']);
  });

  it('sees a table change at once, and a removed container no more', async () => {
    const { server, port } = await serve(['front']);
    expect(await digShort(port, 'cache')).toEqual(['10.0.0.3']);
    server.table.upsertEndpoint({ network: 'front', id: 'c2', name: 'cache', addresses: ['10.0.0.33'] });
    expect(await digShort(port, 'cache')).toEqual(['10.0.0.33']);
    server.table.removeEndpoint('front', 'c2');
    expect(await digStatus(port, 'cache')).toBe('REFUSED');
  });

  it('truncates a large answer over UDP (TC) and gives it whole over TCP', async () => {
    const { server, port } = await serve(['front']);
    const tasks = Array.from({ length: 60 }, (_, i) => ({ name: `big.${i}`, addresses: [`10.0.1.${i + 1}`] }));
    server.table.upsertService({ network: 'front', name: 'big', mode: 'dnsrr', tasks });
    const udp = await dig(port, '+noedns', '+ignore', 'big');
    expect(udp).toMatch(/flags: qr tc rd ra;/);
    // dig retries over TCP by itself on TC, as a resolver does.
    expect(await digShort(port, '+noedns', 'big')).toHaveLength(60);
    expect(await digShort(port, '+tcp', 'big')).toHaveLength(60);
    expect(await digShort(port, '+bufsize=4096', 'big')).toHaveLength(60);
  });

  it('answers several queries over one TCP connection', async () => {
    const { port } = await serve(['front']);
    const out = await dig(port, '+tcp', '+keepopen', '+short', 'web', 'api', 'cache');
    expect(out.split('\n').filter(Boolean)).toEqual(['10.0.0.2', '10.0.0.100', '10.0.0.3']);
  });
});
