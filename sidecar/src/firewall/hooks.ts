// The controller's firewall needs, over the nftables firewall (firewall/): network rules, and
// published ports with their conflicts checked before anything changes.
import { describeError, SidecarError } from '../errors.js';
import type { FirewallHooks } from '../network/hooks.js';
import type { NetworkRecord, PublishTarget } from '../network/records.js';
import type { PortSpec } from '../network/spec.js';
import { NftablesFirewall } from './nftables.js';
import type { Firewall, FwNetwork, FwPort } from './types.js';

function fwNetwork(n: NetworkRecord): FwNetwork {
  const net: FwNetwork = {
    name: n.spec.name,
    bridge: n.device,
    subnet: n.subnet,
    internal: n.spec.internal,
    icc: n.spec.icc,
  };
  if (n.subnet6) net.subnet6 = n.subnet6;
  return net;
}

function fwPorts(n: NetworkRecord, ep: PublishTarget, p: PortSpec): FwPort[] {
  const out: FwPort[] = [];
  for (const address of [ep.ip, ep.ip6]) {
    if (!address) continue;
    // A port published on an IPv4 host address goes to the IPv4 container address only.
    if (p.hostIp && p.hostIp.includes(':') !== address.includes(':')) continue;
    const port: FwPort = {
      network: n.spec.name,
      bridge: n.device,
      proto: p.proto,
      hostPort: p.hostPort,
      address,
      port: p.port,
    };
    if (p.hostIp) port.hostIp = p.hostIp;
    out.push(port);
  }
  return out;
}

const portKey = (p: PortSpec) => `${p.proto}/${p.hostIp ?? '*'}/${p.hostPort}`;

export class NftFirewallHooks implements FirewallHooks {
  readonly #fw: Firewall;
  readonly #log: (line: string) => void;
  /** Host ports in use, so that a conflict is refused before any change. */
  readonly #ports = new Set<string>();

  constructor(fw: Firewall, log: (line: string) => void) {
    this.#fw = fw;
    this.#log = log;
  }

  async addNetwork(net: NetworkRecord): Promise<void> {
    await this.#fw.addNetwork(fwNetwork(net));
  }

  async removeNetwork(net: NetworkRecord): Promise<void> {
    await this.#fw.removeNetwork(net.spec.name);
  }

  async checkPorts(ports: PortSpec[]): Promise<void> {
    const seen = new Set<string>();
    for (const p of ports) {
      const k = portKey(p);
      const clash =
        seen.has(k) ||
        this.#ports.has(k) ||
        [...this.#ports].some((q) => {
          const [proto, ip, port] = q.split('/');
          return proto === p.proto && Number(port) === p.hostPort && (ip === '*' || !p.hostIp || ip === p.hostIp);
        });
      if (clash) {
        throw new SidecarError(
          'SIDECAR_PORT_IN_USE',
          `host port ${p.hostIp ? `${p.hostIp}:` : ''}${p.hostPort}/${p.proto} is published already`,
        );
      }
      seen.add(k);
    }
  }

  async publish(net: NetworkRecord, ep: PublishTarget, p: PortSpec): Promise<void> {
    for (const port of fwPorts(net, ep, p)) await this.#fw.publish(port);
    this.#ports.add(portKey(p));
  }

  async unpublish(net: NetworkRecord, ep: PublishTarget, p: PortSpec): Promise<void> {
    // Undoing goes on past a port that will not go (the rest still should); it is logged, and
    // the next start's reconcile removes what no record holds.
    for (const port of fwPorts(net, ep, p)) {
      await this.#fw
        .unpublish(port)
        .catch((err) =>
          this.#log(`unpublishing ${port.hostPort}/${port.proto} of ${port.address}: ${describeError(err)}`),
        );
    }
    this.#ports.delete(portKey(p));
  }

  async reconcile(nets: NetworkRecord[], eps: PublishTarget[]): Promise<void> {
    const byId = new Map(nets.map((n) => [n.id, n]));
    const ports: FwPort[] = [];
    this.#ports.clear();
    for (const ep of eps) {
      const n = byId.get(ep.network);
      if (!n) continue;
      for (const p of ep.publish) {
        ports.push(...fwPorts(n, ep, p));
        this.#ports.add(portKey(p));
      }
    }
    await this.#fw.reconcile(nets.map(fwNetwork), ports);
  }

  async close(): Promise<void> {
    // The rules stay: containers keep working while the daemon restarts.
  }
}

/** The nftables firewall of the namespace the daemon runs in, its tables created. */
export async function firewallHooks(log: (line: string) => void): Promise<FirewallHooks> {
  const fw = new NftablesFirewall();
  await fw.start();
  return new NftFirewallHooks(fw, log);
}
