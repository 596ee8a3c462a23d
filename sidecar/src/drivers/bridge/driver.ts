// The bridge driver (libnetwork's drivers/bridge): a network is a Linux bridge `cnmd-<id>` on the
// host holding the gateway addresses, with cnmd's firewall rules (isolation, masquerade unless
// internal, published ports); an endpoint is a veth pair on the bridge (../veth.ts).

import { ignoreMissing } from '../../kernel/ignore-missing.js';
import type { DriverContext, NetworkDriver } from '../../network/driver.js';
import type { EndpointRecord, NetworkRecord } from '../../network/records.js';
import type { NetworkSpec } from '../../network/spec.js';
import { joinVeth, leaveVeth, vethPresent } from '../veth.js';

export class BridgeDriver implements NetworkDriver {
  readonly name = 'bridge';
  readonly capability = { scope: 'local', lbSandbox: true, firewall: true } as const;
  readonly #c: DriverContext;

  constructor(c: DriverContext) {
    this.#c = c;
  }

  /** Docker's bridge driver takes options of its own; none of them is cnmd's, and none refused. */
  validate(_spec: NetworkSpec): void {}

  async device(id: string): Promise<string> {
    return `cnmd-${id.slice(0, 10)}`;
  }

  async buildNetwork(net: NetworkRecord): Promise<void> {
    const host = await this.#c.host();
    const have = (await host.links()).some((l) => l.name === net.device);
    if (!have) await host.addBridge(net.device, { mtu: net.spec.mtu, up: true });
    const addrs = new Set((await host.addresses(net.device)).map((a) => a.cidr));
    for (const [gw, subnet] of [
      [net.gateway, net.subnet],
      [net.gateway6, net.subnet6],
    ]) {
      const cidr = gw && subnet ? `${gw}/${subnet.split('/')[1]}` : undefined;
      if (cidr && !addrs.has(cidr)) await host.addAddress(net.device, cidr);
    }
    await this.#c.firewall.addNetwork(net);
  }

  async deleteNetwork(net: NetworkRecord): Promise<void> {
    await this.#c.firewall.removeNetwork(net);
    await ignoreMissing((await this.#c.host()).deleteLink(net.device));
  }

  async join(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    await joinVeth(await this.#c.host(), net, ep, net.spec.mtu);
  }

  async leave(_net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    await leaveVeth(await this.#c.host(), ep);
  }

  async present(_net: NetworkRecord, ep: EndpointRecord): Promise<boolean> {
    return vethPresent(await this.#c.host(), ep);
  }
}
