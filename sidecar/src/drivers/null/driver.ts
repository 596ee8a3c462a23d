// The null driver (libnetwork's drivers/null): Docker's predefined network `none`. A sandbox on
// it has no interface but its loopback, brought up; nothing else is made, nothing is undone.
import type { DriverContext, NetworkDriver } from '../../network/driver.js';
import type { EndpointRecord } from '../../network/records.js';

export class NullDriver implements NetworkDriver {
  readonly name = 'null';
  readonly capability = { scope: 'local', lbSandbox: false, firewall: false, predefined: true } as const;
  readonly #c: DriverContext;

  constructor(c: DriverContext) {
    this.#c = c;
  }

  validate(): void {}

  async device(): Promise<string> {
    return '';
  }

  async buildNetwork(): Promise<void> {}

  async deleteNetwork(): Promise<void> {}

  async join(_net: unknown, ep: EndpointRecord): Promise<void> {
    const sb = await this.#c.kernel.open(ep.sandbox);
    try {
      await sb.setLink('lo', { up: true });
    } finally {
      await sb.close();
    }
  }

  async leave(): Promise<void> {}

  async present(): Promise<boolean> {
    return true;
  }
}
