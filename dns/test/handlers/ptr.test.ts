import { describe, expect, it } from 'vitest';
import { TYPE } from '../../src/internal.js';
import { resolve, sampleTable } from '../helpers.js';

describe('ptr: reverse names of endpoint addresses', () => {
  const t = sampleTable();
  it.each([
    ['2.0.0.10.in-addr.arpa', ['front'], ['PTR web.front.']],
    ['2.0.0.10.IN-ADDR.ARPA', ['front'], ['PTR web.front.']],
    ['2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa', ['front'], ['PTR web.front.']],
    ['2.0.1.10.in-addr.arpa', ['back'], ['PTR db.back.']],
  ])('%s on %j answers %j', (name, nets, answers) => {
    expect(resolve(t, nets, name, TYPE.PTR)).toEqual({ rcode: 0, answers, additionals: [] });
  });

  it('answers a known address asked for another type with NOERROR and nothing', () => {
    expect(resolve(t, ['front'], '2.0.0.10.in-addr.arpa', TYPE.A)).toEqual({ rcode: 0, answers: [], additionals: [] });
  });

  it.each([
    ['2.0.1.10.in-addr.arpa', ['front']], // on back only
    ['100.0.0.10.in-addr.arpa', ['front']], // a VIP: no PTR, as in libnetwork
    ['9.9.9.9.in-addr.arpa', ['front']],
  ])('leaves %s on %j to the upstreams', (name, nets) => {
    expect(resolve(t, nets, name, TYPE.PTR)).toBe('not held');
  });

  it('answers an anonymous endpoint with its first alias', () => {
    const t2 = sampleTable();
    t2.upsertEndpoint({ network: 'front', id: 'anon', aliases: ['first', 'second'], addresses: ['10.0.0.50'] });
    expect(resolve(t2, ['front'], '50.0.0.10.in-addr.arpa', TYPE.PTR)).toMatchObject({ answers: ['PTR first.front.'] });
  });
});
