// The host driver (libnetwork's drivers/host): Docker's predefined network `host`. The sandbox is
// the host's own namespace, the one the daemon runs in, and nothing is made there; any other
// namespace is refused.
import { SidecarError } from '../../errors.js';
import type { NetworkDriver } from '../../network/driver.js';
import type { EndpointRecord } from '../../network/records.js';
import { ownNetnsKey } from '../../sandbox/path.js';

export class HostDriver implements NetworkDriver {
  readonly name = 'host';
  readonly capability = { scope: 'local', lbSandbox: false, firewall: false, predefined: true } as const;

  validate(): void {}

  async device(): Promise<string> {
    return '';
  }

  async buildNetwork(): Promise<void> {}

  async deleteNetwork(): Promise<void> {}

  async join(_net: unknown, ep: EndpointRecord): Promise<void> {
    if (ownNetnsKey() !== ep.sandboxKey) {
      throw new SidecarError('SIDECAR_INVALID_ARGUMENT', `--network host: ${ep.sandbox} is not the host's namespace`);
    }
  }

  async leave(): Promise<void> {}

  async present(): Promise<boolean> {
    return true;
  }
}
