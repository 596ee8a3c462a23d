import { describe, expect, it } from 'vitest';
import { TYPE } from '../../src/internal.js';
import { resolve, sampleTable } from '../helpers.js';

describe('services: <service> answers its VIP, or its tasks in dnsrr mode', () => {
  const t = sampleTable();
  it.each([
    ['api', TYPE.A, ['A 10.0.0.100']],
    ['rest', TYPE.A, ['A 10.0.0.100']], // a service alias
    ['API', TYPE.A, ['A 10.0.0.100']],
    ['api', TYPE.AAAA, []],
    ['rr', TYPE.A, ['A 10.0.0.21', 'A 10.0.0.22']],
    ['rr', TYPE.AAAA, ['AAAA fd00::22']],
    ['api.front', TYPE.A, ['A 10.0.0.100']],
  ])('%s type %i answers %j', (name, type, answers) => {
    expect(resolve(t, ['front'], name, type)).toEqual({ rcode: 0, answers, additionals: [] });
  });

  it('is not seen from another network', () => {
    expect(resolve(t, ['back'], 'api', TYPE.A)).toBe('not held');
  });

  it('follows the service as it changes, and forgets it when removed', () => {
    const t2 = sampleTable();
    t2.upsertService({ network: 'front', name: 'api', vips: ['10.0.0.101'] });
    expect(resolve(t2, ['front'], 'api', TYPE.A)).toMatchObject({ answers: ['A 10.0.0.101'] });
    t2.removeService('front', 'API');
    expect(resolve(t2, ['front'], 'api', TYPE.A)).toBe('not held');
  });
});
