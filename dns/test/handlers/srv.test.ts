import { describe, expect, it } from 'vitest';
import { TYPE } from '../../src/internal.js';
import { resolve, sampleTable } from '../helpers.js';

describe('srv: _<port>._<proto>.<service>', () => {
  const t = sampleTable();
  it('answers proper SRV records (type 33), one per ready task, addresses in the additional section', () => {
    expect(resolve(t, ['front'], '_http._tcp.api', TYPE.SRV)).toEqual({
      rcode: 0,
      answers: ['SRV 0 0 8080 api.1.aaa.', 'SRV 0 0 8080 api.2.bbb.'],
      additionals: ['A 10.0.0.11', 'A 10.0.0.12'],
    });
  });

  it.each([
    ['_HTTP._TCP.API', TYPE.SRV, 2],
    ['_http._tcp.rest', TYPE.SRV, 2],
    ['_http._tcp.api', TYPE.A, 0], // known name, other type: NOERROR, nothing
  ])('%s type %i answers %i records', (name, type, n) => {
    const r = resolve(t, ['front'], name, type);
    expect(r).not.toBe('not held');
    expect((r as { answers: string[] }).answers).toHaveLength(n);
  });

  it.each([
    ['_http._udp.api'], // wrong protocol
    ['_grpc._tcp.api'], // unnamed port
    ['_http._tcp.nope'],
  ])('leaves %s to the upstreams', (name) => {
    expect(resolve(t, ['front'], name, TYPE.SRV)).toBe('not held');
  });
});
