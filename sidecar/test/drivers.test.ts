// The driver registry and each driver's own checks, before anything is made: the controller
// calls Drivers.check first in createNetwork (the privileged daemon tests make real networks).
import { describe, expect, it } from 'vitest';
import { builtinDrivers } from '../src/drivers/index.js';
import { type DriverContext, Drivers } from '../src/network/driver.js';
import { parseNetworkSpec } from '../src/network/parse.js';

// check() runs no kernel call: a context that fails if one is made.
const offline = new Proxy({} as DriverContext, {
  get: () => {
    throw new Error('a driver check touched the kernel');
  },
});
const drivers = new Drivers(builtinDrivers(offline));
const check = (body: unknown) => drivers.check(parseNetworkSpec(body));

describe('Drivers.check', () => {
  it.each([
    [{ name: 'x' }, 'bridge'],
    [{ name: 'x', driver: 'macvlan', options: { parent: 'eth0' } }, 'macvlan'],
    [{ name: 'x', driver: 'overlay', options: { vni: '5000', 'vxlan-port': '4790' } }, 'overlay'],
  ])('%j: %s', (body, driver) => {
    expect(check(body).name).toBe(driver);
  });

  it.each([
    [
      { name: 'x', driver: 'ipvlan' },
      'SIDECAR_DRIVER_UNKNOWN',
      /no network driver "ipvlan": bridge, macvlan, overlay$/,
    ],
    [{ name: 'x', driver: 'overlay', options: { vni: '0' } }, 'API_INVALID_ARGUMENT', /vni 0/],
    [{ name: 'x', driver: 'overlay', options: { colour: 'blue' } }, 'API_INVALID_ARGUMENT', /not colour/],
    [{ name: 'x', driver: 'macvlan' }, 'API_INVALID_ARGUMENT', /parent/],
    [{ name: 'x', driver: 'macvlan', options: { parent: 'not an if' } }, 'API_INVALID_ARGUMENT', /interface name/],
    [{ name: 'x', driver: 'null' }, 'SIDECAR_INVALID_ARGUMENT', /predefined/],
    [{ name: 'x', driver: 'host' }, 'SIDECAR_INVALID_ARGUMENT', /predefined/],
  ])('refuses %j with %s', (body, code, why) => {
    expect(() => check(body)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(why) }));
  });
});

it('every driver says its scope and what it needs', () => {
  for (const d of builtinDrivers(offline)) {
    expect(d.capability.scope).toBe(d.name === 'overlay' ? 'global' : 'local');
    expect(typeof d.capability.lbSandbox).toBe('boolean');
    expect(typeof d.capability.firewall).toBe('boolean');
  }
});
