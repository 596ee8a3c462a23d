import { describe, expect, it } from 'vitest';
import { NameTable } from '../src/index.js';
import { depKey } from '../src/internal.js';
import { codeOf } from './helpers.js';

describe('NameTable', () => {
  it('reports the names a batch touched, once, after applying all of it', () => {
    const t = new NameTable();
    const seen: string[][] = [];
    t.onChange((c) => seen.push([...c].sort()));
    t.batch((tx) => {
      tx.upsertEndpoint({ network: 'n', id: 'c1', name: 'Web', addresses: ['10.0.0.2'] });
      tx.upsertService({ network: 'n', name: 'api', vips: ['10.0.0.9'] });
    });
    expect(seen).toEqual([
      [depKey('p', 'n', '2.0.0.10.in-addr.arpa'), depKey('n', 'n', 'web'), depKey('s', 'n', 'api')].sort(),
    ]);
    expect(t.version).toBe(1);
  });

  it('applies nothing of a batch with an invalid change', async () => {
    const t = new NameTable();
    const code = await codeOf(() =>
      t.batch((tx) => {
        tx.upsertEndpoint({ network: 'n', id: 'c1', name: 'ok', addresses: ['10.0.0.2'] });
        tx.upsertEndpoint({ network: 'n', id: 'c2', name: 'bad name!', addresses: ['10.0.0.3'] });
      }),
    );
    expect(code).toBe('DNS_INVALID_NAME');
    expect(t.endpointsByName('n', 'ok')).toBeUndefined();
    expect(t.version).toBe(0);
  });

  it.each([
    [{ network: 'n', id: 'c', name: 'x', addresses: ['10.0.0.300'] }, 'DNS_INVALID_ADDRESS'],
    [{ network: 'n', id: 'c', name: 'a'.repeat(64), addresses: [] }, 'DNS_INVALID_NAME'],
    [{ network: 'n', id: 'c', name: 'a..b', addresses: [] }, 'DNS_INVALID_NAME'],
    [{ network: '', id: 'c', addresses: [] }, 'DNS_INVALID_RECORD'],
    [{ network: 'n', id: '', addresses: [] }, 'DNS_INVALID_RECORD'],
  ])('refuses the endpoint %j with %s', async (spec, code) => {
    expect(await codeOf(() => new NameTable().upsertEndpoint(spec as never))).toBe(code);
  });

  it.each([
    [{ network: 'n', name: 's', mode: 'vip' }, 'DNS_INVALID_RECORD'],
    [
      { network: 'n', name: 's', vips: ['10.0.0.1'], ports: [{ name: 'http', protocol: 'sctp', port: 80 }] },
      'DNS_INVALID_RECORD',
    ],
    [{ network: 'n', name: 's', tasks: [{ name: 't', addresses: ['x'] }] }, 'DNS_INVALID_ADDRESS'],
  ])('refuses the service %j with %s', async (spec, code) => {
    expect(await codeOf(() => new NameTable().upsertService(spec as never))).toBe(code);
  });

  it('replaces an endpoint by id, and removes a whole network', () => {
    const t = new NameTable();
    t.upsertEndpoint({ network: 'n', id: 'c1', name: 'a', addresses: ['10.0.0.2'] });
    t.upsertEndpoint({ network: 'n', id: 'c1', name: 'b', addresses: ['10.0.0.3'] });
    expect(t.endpointsByName('n', 'a')).toBeUndefined();
    expect(t.endpointsByName('n', 'b')?.[0]?.addresses.map((a) => a.text)).toEqual(['10.0.0.3']);
    expect(t.endpointsByAddress('n', '2.0.0.10.in-addr.arpa')).toBeUndefined();
    t.upsertService({ network: 'n', name: 's', vips: ['10.0.0.9'] });
    t.removeNetwork('n');
    expect(t.list('n')).toEqual({ endpoints: [], services: [] });
  });
});
