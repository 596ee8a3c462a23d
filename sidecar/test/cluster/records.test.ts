// Values from the cluster are checked before use: another host may be newer, or buggy.
import { describe, expect, it } from 'vitest';
import {
  decodeEndpoint,
  decodeHost,
  decodeNetwork,
  decodeService,
  encode,
  endpointKey,
  serviceKey,
} from '../../src/cluster/records.js';

const ID = 'a'.repeat(64);
const NET = 'b'.repeat(64);
const CID = 'c'.repeat(64);

const endpoint = {
  v: 1,
  host: 'h1',
  id: ID,
  network: NET,
  containerId: CID,
  name: 'web1',
  aliases: ['w'],
  ip: '10.0.1.2',
};
const network = {
  v: 1,
  id: NET,
  spec: {
    name: 'shared',
    driver: 'bridge',
    scope: 'global',
    ipv6: false,
    internal: false,
    icc: true,
    mtu: 1500,
    options: {},
  },
  subnet: '10.0.1.0/24',
  gateway: '10.0.1.1',
  host: 'h1',
  created: '2026-12-06T00:00:00Z',
};
const service = {
  v: 1,
  id: ID,
  spec: { name: 'web', network: 'shared', ports: [], scheduler: 'rr', mode: 'vip' },
  network: NET,
  vip: '10.0.1.5',
  mark: 256,
  host: 'h1',
};

describe('accepted', () => {
  it('an endpoint, a network, a service, a heartbeat', () => {
    expect(decodeEndpoint(endpointKey('h1', ID), encode(endpoint))).toEqual(endpoint);
    expect(decodeNetwork(NET, encode(network))).toEqual(network);
    expect(decodeService(serviceKey(NET, 'web'), encode(service))).toEqual(service);
    expect(decodeHost('h1', encode({ v: 1, host: 'h1', at: 1, started: 1 }))).toMatchObject({ host: 'h1' });
  });
});

describe('refused, saying why', () => {
  it.each([
    ['not JSON', endpointKey('h1', ID), '{', /not JSON/],
    ['an array', endpointKey('h1', ID), '[]', /not a JSON object/],
    ['a newer version', endpointKey('h1', ID), encode({ ...endpoint, v: 2 }), /newer version/],
    ['no version', endpointKey('h1', ID), encode({ ...endpoint, v: undefined }), /no version/],
    ['another host than its key', endpointKey('h2', ID), encode(endpoint), /written for host h1 under host h2/],
    ['another id than its key', endpointKey('h1', NET), encode(endpoint), /id is not its key/],
    ['a bad address', endpointKey('h1', ID), encode({ ...endpoint, ip: '10.0.1.300' }), /address/],
    ['a bad name', endpointKey('h1', ID), encode({ ...endpoint, name: '-x' }), /name/],
    ['bad aliases', endpointKey('h1', ID), encode({ ...endpoint, aliases: 'w' }), /aliases/],
    ['a bad weight', endpointKey('h1', ID), encode({ ...endpoint, service: 's', weight: -1 }), /weight/],
  ])('an endpoint with %s', (_, key, text, why) => {
    const r = decodeEndpoint(key, text);
    expect(r).toEqual({ error: expect.stringMatching(why) });
  });

  it.each([
    ['a local network', encode({ ...network, spec: { ...network.spec, scope: 'local' } }), /not a global network/],
    ['another id', encode({ ...network, id: ID }), /id is not its key/],
    ['a bad subnet', encode({ ...network, subnet: 'ten' }), /subnet/],
  ])('a network with %s', (_, text, why) => {
    expect(decodeNetwork(NET, text)).toEqual({ error: expect.stringMatching(why) });
  });

  it('a service under another key, or with a low mark', () => {
    expect(decodeService(serviceKey(NET, 'api'), encode(service))).toEqual({ error: expect.stringMatching(/key/) });
    expect(decodeService(serviceKey(NET, 'web'), encode({ ...service, mark: 3 }))).toEqual({
      error: expect.stringMatching(/mark/),
    });
  });

  it('a heartbeat of another host', () => {
    expect(decodeHost('h2', encode({ v: 1, host: 'h1', at: 1, started: 1 }))).toEqual({
      error: expect.stringMatching(/h1/),
    });
  });
});
