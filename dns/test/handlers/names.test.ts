import { describe, expect, it } from 'vitest';
import { TYPE } from '../../src/internal.js';
import { resolve, sampleTable } from '../helpers.js';

describe('names: container names, aliases, short ids, hostnames', () => {
  const t = sampleTable();
  it.each([
    ['web', TYPE.A, ['front'], ['A 10.0.0.2']],
    ['WEB', TYPE.A, ['front'], ['A 10.0.0.2']],
    ['web', TYPE.AAAA, ['front'], ['AAAA fd00::2']],
    ['www', TYPE.A, ['front'], ['A 10.0.0.2']],
    ['webhost', TYPE.A, ['front'], ['A 10.0.0.2']],
    ['0123456789ab', TYPE.A, ['front'], ['A 10.0.0.2']],
    ['web', TYPE.ANY, ['front'], ['A 10.0.0.2', 'AAAA fd00::2']],
    // A name on several of the sandbox's networks answers from all of them.
    ['web', TYPE.A, ['front', 'back'], ['A 10.0.0.2', 'A 10.1.0.9']],
    ['www', TYPE.A, ['front', 'back'], ['A 10.0.0.2', 'A 10.1.0.2']],
    // Known name, no record of the asked type: NOERROR and no answer.
    ['cache', TYPE.AAAA, ['front'], []],
    ['cache', TYPE.MX, ['front'], []],
    ['db', TYPE.TXT, ['back'], []],
  ])('%s type %i on %j answers %j', (name, type, nets, answers) => {
    expect(resolve(t, nets, name, type)).toEqual({ rcode: 0, answers, additionals: [] });
  });

  it.each([
    ['db', ['front']], // only on back: a sandbox on front does not see it
    ['nothere', ['front', 'back']],
    ['0123456789a', ['front']], // 11 digits is not a short id
  ])('%s is not held for a sandbox on %j', (name, nets) => {
    expect(resolve(t, nets, name, TYPE.A)).toBe('not held');
  });

  it.each([
    // libnetwork: a.b is tried on every network, then a on network b.
    ['web.back', ['front', 'back'], ['A 10.1.0.9']],
    ['web.front', ['front', 'back'], ['A 10.0.0.2']],
    ['WEB.Front', ['front', 'back'], ['A 10.0.0.2']],
    ['cache.front', ['front'], ['A 10.0.0.3']],
  ])('%s on %j answers %j (the a.b rule)', (name, nets, answers) => {
    expect(resolve(t, nets, name, TYPE.A)).toEqual({ rcode: 0, answers, additionals: [] });
  });

  it('prefers a full name over the a-on-network-b reading', () => {
    const t2 = sampleTable();
    t2.upsertEndpoint({ network: 'front', id: 'x', name: 'web.back', addresses: ['10.0.0.77'] });
    expect(resolve(t2, ['front', 'back'], 'web.back', TYPE.A)).toMatchObject({ answers: ['A 10.0.0.77'] });
  });

  it('does not read a.b as a on network b when the sandbox is not on b', () => {
    expect(resolve(t, ['front'], 'web.back', TYPE.A)).toBe('not held');
  });
});
