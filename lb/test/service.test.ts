import { describe, expect, it } from 'vitest';
import { isLbError, type LbErrorCode } from '../src/errors.js';
import { portsClash, toVirtualService, validateService } from '../src/service.js';

const net = { name: 'front', subnets: ['10.0.1.0/24', 'fd00:1::/64'] };

describe('validateService', () => {
  it('fills in the defaults and canonicalises addresses', () => {
    const s = validateService({
      name: 'web',
      network: net,
      vip: 'fd00:1:0:0::10',
      backends: [{ address: 'fd00:1::0:2' }],
    });
    expect(s).toMatchObject({ vip: 'fd00:1::10', family: 6, ports: [], scheduler: 'rr', endpointMode: 'vip' });
    expect(s.backends).toEqual([{ address: 'fd00:1::2', weight: 1 }]);
  });

  it.each<[string, Record<string, unknown>, LbErrorCode]>([
    ['an unknown scheduler', { scheduler: 'fastest' }, 'LB_INVALID_SCHEDULER'],
    ['a VIP outside the subnets', { vip: '10.0.2.10' }, 'LB_VIP_OUT_OF_SUBNET'],
    ['the network address as VIP', { vip: '10.0.1.0' }, 'LB_VIP_OUT_OF_SUBNET'],
    ['a backend outside the subnets', { backends: [{ address: '10.0.2.2' }] }, 'LB_BACKEND_WRONG_NETWORK'],
    [
      'a backend named on another network',
      { backends: [{ address: '10.0.1.2', network: 'back' }] },
      'LB_BACKEND_WRONG_NETWORK',
    ],
    ['a backend of the other family', { backends: [{ address: 'fd00:1::2' }] }, 'LB_BACKEND_WRONG_NETWORK'],
    ['a bad name', { name: 'no spaces' }, 'LB_INVALID_ARGUMENT'],
    ['a bad VIP', { vip: '10.0.1.300' }, 'LB_INVALID_ARGUMENT'],
    ['a bad port', { ports: [{ port: 70000 }] }, 'LB_INVALID_ARGUMENT'],
    ['a port twice', { ports: [{ port: 80 }, { port: 80, proto: 'tcp' }] }, 'LB_INVALID_ARGUMENT'],
    ['a bad protocol', { ports: [{ port: 80, proto: 'sctp' }] }, 'LB_INVALID_ARGUMENT'],
    ['a negative weight', { backends: [{ address: '10.0.1.2', weight: -1 }] }, 'LB_INVALID_ARGUMENT'],
    ['a backend twice', { backends: [{ address: '10.0.1.2' }, { address: '10.0.1.2' }] }, 'LB_INVALID_ARGUMENT'],
    ['a mark below 256', { mark: 12 }, 'LB_INVALID_ARGUMENT'],
    ['a VIP in dnsrr mode', { endpointMode: 'dnsrr' }, 'LB_INVALID_ARGUMENT'],
    ['a health check without a port', { health: { type: 'tcp' } }, 'LB_INVALID_ARGUMENT'],
  ])('refuses %s', (_, over, code) => {
    const spec = { name: 'web', network: net, vip: '10.0.1.10', ...over };
    let err: unknown;
    try {
      validateService(spec);
    } catch (e) {
      err = e;
    }
    expect(isLbError(err, code), String(err)).toBe(true);
  });

  it('takes dnsrr services without a VIP', () => {
    expect(validateService({ name: 'db', network: net, endpointMode: 'dnsrr' }).vip).toBeUndefined();
  });

  it('fills in a health check from the ports', () => {
    const s = validateService({
      name: 'web',
      network: net,
      vip: '10.0.1.10',
      ports: [{ port: 80, targetPort: 8080 }],
      health: { type: 'http' },
    });
    expect(s.health).toEqual({
      type: 'http',
      port: 8080,
      path: '/',
      intervalMs: 5000,
      timeoutMs: 1000,
      healthyThreshold: 2,
      unhealthyThreshold: 3,
    });
  });
});

describe('portsClash', () => {
  const svc = (vip: string, ports?: unknown) => validateService({ name: 'x', network: net, vip, ports });
  it.each([
    [svc('10.0.1.10', [{ port: 80 }]), svc('10.0.1.10', [{ port: 80 }]), true],
    [svc('10.0.1.10', [{ port: 80 }]), svc('10.0.1.10', [{ port: 80, proto: 'udp' }]), false],
    [svc('10.0.1.10', [{ port: 80 }]), svc('10.0.1.11', [{ port: 80 }]), false],
    [svc('10.0.1.10'), svc('10.0.1.10', [{ port: 53 }]), true],
  ])('%#', (a, b, clash) => {
    expect(Boolean(portsClash(a, b))).toBe(clash);
  });
});

it('maps a service to a VirtualService, unhealthy backends at weight 0', () => {
  const s = validateService({
    name: 'web',
    network: net,
    vip: '10.0.1.10',
    mark: 300,
    scheduler: 'wrr',
    ports: [{ port: 80, targetPort: 8080 }],
    backends: [
      { address: '10.0.1.2', weight: 3 },
      { address: '10.0.1.3', weight: 1 },
    ],
  });
  expect(toVirtualService(s, new Set(['10.0.1.3']))).toEqual({
    mark: 300,
    vip: '10.0.1.10',
    ports: [{ proto: 'tcp', port: 80, targetPort: 8080 }],
    scheduler: 'wrr',
    backends: [
      { address: '10.0.1.2', weight: 3 },
      { address: '10.0.1.3', weight: 0 },
    ],
  });
});
