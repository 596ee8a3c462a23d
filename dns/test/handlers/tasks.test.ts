import { describe, expect, it } from 'vitest';
import { TYPE } from '../../src/internal.js';
import { resolve, sampleTable } from '../helpers.js';

describe('tasks: tasks.<service> answers every ready task', () => {
  const t = sampleTable();
  it.each([
    ['tasks.api', TYPE.A, ['A 10.0.0.11', 'A 10.0.0.12']], // api.3 is not ready
    ['tasks.rest', TYPE.A, ['A 10.0.0.11', 'A 10.0.0.12']],
    ['Tasks.RR', TYPE.A, ['A 10.0.0.21', 'A 10.0.0.22']],
    ['tasks.rr', TYPE.AAAA, ['AAAA fd00::22']],
    ['tasks.api.front', TYPE.A, ['A 10.0.0.11', 'A 10.0.0.12']],
  ])('%s type %i answers %j', (name, type, answers) => {
    expect(resolve(t, ['front'], name, type)).toEqual({ rcode: 0, answers, additionals: [] });
  });

  it('keeps the name of a service with no ready task: NOERROR, no answer, not forwarded', () => {
    const t2 = sampleTable();
    t2.upsertService({
      network: 'front',
      name: 'idle',
      mode: 'dnsrr',
      tasks: [{ name: 'i.1', addresses: ['10.0.0.5'], ready: false }],
    });
    expect(resolve(t2, ['front'], 'tasks.idle', TYPE.A)).toEqual({ rcode: 0, answers: [], additionals: [] });
  });

  it('leaves tasks.<unknown> to the upstreams', () => {
    expect(resolve(t, ['front'], 'tasks.nope', TYPE.A)).toBe('not held');
  });
});
