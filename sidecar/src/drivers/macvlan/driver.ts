// The macvlan driver (libnetwork's drivers/macvlan, bridge mode): a network is a parent link of
// the host; an endpoint is a macvlan sub-interface of it made directly in the sandbox, with its
// own MAC on the parent's LAN. Nothing of the network itself is made on the host.
import { invalid, SidecarError } from '../../errors.js';
import { ignoreMissing } from '../../kernel/ignore-missing.js';
import type { DriverContext, NetworkDriver } from '../../network/driver.js';
import type { EndpointRecord, NetworkRecord } from '../../network/records.js';
import type { NetworkSpec } from '../../network/spec.js';

const IFNAME = /^[a-zA-Z0-9_.-]{1,15}$/;

export class MacvlanDriver implements NetworkDriver {
  readonly name = 'macvlan';
  readonly capability = { scope: 'local', lbSandbox: true, firewall: false } as const;
  readonly #c: DriverContext;

  constructor(c: DriverContext) {
    this.#c = c;
  }

  validate(spec: NetworkSpec): void {
    const { parent } = spec.options;
    if (!parent) throw invalid('a macvlan network needs the option parent=<interface>');
    if (!IFNAME.test(parent)) throw invalid('parent is not an interface name');
  }

  /** The parent, which must exist and carry the network's MTU (the kernel would say EINVAL). */
  async device(_id: string, spec: NetworkSpec): Promise<string> {
    const parent = await (await this.#c.host()).link(spec.options.parent!); // SIDECAR_LINK_NOT_FOUND
    if (spec.mtu > parent.mtu) {
      throw new SidecarError(
        'SIDECAR_INVALID_ARGUMENT',
        `mtu ${spec.mtu} is more than the parent ${parent.name} carries (${parent.mtu})`,
      );
    }
    return parent.name;
  }

  async buildNetwork(): Promise<void> {}

  async deleteNetwork(): Promise<void> {}

  async join(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    const host = await this.#c.host();
    await host.addMacvlan({
      name: ep.ifname,
      netns: ep.sandbox,
      mtu: net.spec.mtu,
      parent: net.device,
      ...(ep.mac ? { mac: ep.mac } : {}),
    });
  }

  async leave(_net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    const sb = await this.#c.kernel.open(ep.sandbox).catch(() => undefined); // the sandbox may be gone
    if (sb) await ignoreMissing(sb.deleteLink(ep.ifname)).finally(() => sb.close());
  }

  async present(_net: NetworkRecord, ep: EndpointRecord): Promise<boolean> {
    const sb = await this.#c.kernel.open(ep.sandbox);
    try {
      return (await sb.links()).some((l) => l.name === ep.ifname);
    } finally {
      await sb.close();
    }
  }
}
