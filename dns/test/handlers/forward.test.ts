import { describe, expect, it } from 'vitest';
import { DnsError } from '../../src/index.js';
import { decode, type Exchange, encode, Forwarder, parseUpstream, type Upstream } from '../../src/internal.js';

const ups = ['10.9.0.1', '10.9.0.2', '10.9.0.3'].map(parseUpstream);
const question = Buffer.from([3, 0x66, 0x6f, 0x6f, 0, 0, 1, 0, 1]); // foo A IN

/** An upstream's reply to `query`: rcode, one A record, TC when asked. */
function reply(query: Buffer, rcode: number, opts: { tc?: boolean; address?: string } = {}): Buffer {
  const q = decode(query);
  return encode({
    type: 'response',
    id: q.id,
    flags: (opts.tc ? 0x0200 : 0) | rcode,
    questions: q.questions,
    answers: rcode === 0 ? [{ type: 'A', name: 'foo', ttl: 60, data: opts.address ?? '192.0.2.1' }] : [],
  });
}

type Behaviour = (query: Buffer, tcp: boolean) => Buffer | 'timeout' | 'error';

function forwarder(behaviours: Record<string, Behaviour>, log: string[], now = () => 0) {
  const exchange: Exchange = async (u: Upstream, query, tcp) => {
    log.push(`${u.host}${tcp ? '/tcp' : ''}`);
    const r = behaviours[u.host]?.(query, tcp) ?? 'timeout';
    if (r === 'timeout') throw new DnsError('DNS_UPSTREAM_TIMEOUT', 'no answer');
    if (r === 'error') throw new DnsError('DNS_UPSTREAM_ERROR', 'refused');
    return r;
  };
  return new Forwarder({ exchange, timeout: 10, failuresToSkip: 2, skipFor: 1000, now });
}

const ask = (f: Forwarder, tcp = false) =>
  f.resolve(ups, { question, flags: 0x0100, edns: undefined, tcp, sandbox: 's' });

describe('forward: upstreams tried in turn', () => {
  it.each<[string, Record<string, Behaviour>, string[], number | undefined]>([
    ['the first answers', { '10.9.0.1': (q) => reply(q, 0) }, ['10.9.0.1'], 0],
    [
      'next on SERVFAIL',
      { '10.9.0.1': (q) => reply(q, 2), '10.9.0.2': (q) => reply(q, 0) },
      ['10.9.0.1', '10.9.0.2'],
      0,
    ],
    [
      'next on REFUSED',
      { '10.9.0.1': (q) => reply(q, 5), '10.9.0.2': (q) => reply(q, 3) },
      ['10.9.0.1', '10.9.0.2'],
      3,
    ],
    ['next on timeout', { '10.9.0.1': () => 'timeout', '10.9.0.2': (q) => reply(q, 0) }, ['10.9.0.1', '10.9.0.2'], 0],
    [
      'next on error',
      { '10.9.0.1': () => 'error', '10.9.0.3': (q) => reply(q, 0) },
      ['10.9.0.1', '10.9.0.2', '10.9.0.3'],
      0,
    ],
    ['NXDOMAIN is an answer', { '10.9.0.1': (q) => reply(q, 3) }, ['10.9.0.1'], 3],
    // libnetwork relays neither SERVFAIL nor REFUSED: the server answers SERVFAIL of its own.
    [
      'all SERVFAIL or REFUSED: none',
      { '10.9.0.1': (q) => reply(q, 2), '10.9.0.2': (q) => reply(q, 5), '10.9.0.3': (q) => reply(q, 2) },
      ['10.9.0.1', '10.9.0.2', '10.9.0.3'],
      undefined,
    ],
    ['none answers', {}, ['10.9.0.1', '10.9.0.2', '10.9.0.3'], undefined],
  ])('%s', async (_, behaviours, tried, rcode) => {
    const log: string[] = [];
    const msg = await ask(forwarder(behaviours, log));
    expect(log).toEqual(tried);
    expect(msg?.rcode).toBe(rcode);
  });

  it('asks again over TCP when the UDP answer is truncated', async () => {
    const log: string[] = [];
    const f = forwarder(
      { '10.9.0.1': (q, tcp) => reply(q, 0, { tc: !tcp, address: tcp ? '192.0.2.9' : '192.0.2.1' }) },
      log,
    );
    const msg = await ask(f);
    expect(log).toEqual(['10.9.0.1', '10.9.0.1/tcp']);
    expect(decode(msg!.buf).answers?.[0]).toMatchObject({ data: '192.0.2.9' });
  });

  it('forwards a TCP query over TCP', async () => {
    const log: string[] = [];
    await ask(forwarder({ '10.9.0.1': (q) => reply(q, 0) }, log), true);
    expect(log).toEqual(['10.9.0.1/tcp']);
  });

  it('skips an upstream that keeps failing, for a while', async () => {
    const log: string[] = [];
    let now = 0;
    const f = forwarder({ '10.9.0.1': () => 'timeout', '10.9.0.2': (q) => reply(q, 0) }, log, () => now);
    await ask(f);
    await ask(f);
    log.length = 0;
    await ask(f);
    expect(log).toEqual(['10.9.0.2']);
    now = 1001;
    log.length = 0;
    await ask(f);
    expect(log).toEqual(['10.9.0.1', '10.9.0.2']);
  });

  it('sends a fresh ID, the asked question and the asker EDNS size upstream', async () => {
    const seen: Buffer[] = [];
    const f = forwarder(
      {
        '10.9.0.1': (q) => {
          seen.push(q);
          return reply(q, 0);
        },
      },
      [],
    );
    await f.resolve(ups, {
      question,
      flags: 0x0100,
      edns: { udpSize: 4096, dnssecOk: true },
      tcp: false,
      sandbox: 's',
    });
    const q = decode(seen[0]!);
    expect(q.questions).toEqual([{ name: 'foo', type: 'A', class: 'IN' }]);
    expect(q.additionals?.[0]).toMatchObject({ type: 'OPT', udpPayloadSize: 4096, flag_do: true });
  });
});
