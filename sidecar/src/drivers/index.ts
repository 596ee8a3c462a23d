// The drivers cnmd has, for the daemon to hand the controller (network/driver.ts is their API).
import type { DriverContext, NetworkDriver } from '../network/driver.js';
import { BridgeDriver } from './bridge/driver.js';
import { HostDriver } from './host/driver.js';
import { MacvlanDriver } from './macvlan/driver.js';
import { NullDriver } from './null/driver.js';
import { OverlayDriver } from './overlay/driver.js';

export function builtinDrivers(c: DriverContext): NetworkDriver[] {
  return [new BridgeDriver(c), new MacvlanDriver(c), new OverlayDriver(c), new NullDriver(c), new HostDriver()];
}
