// The overlay driver (libnetwork's drivers/overlay), for global networks between hosts: on each
// host a bridge `cnmd-<id>` (no gateway: containers talk among themselves) with a VXLAN device
// `cnvx<vni>` as a port, its VTEP this host's underlay address (--advertise-addr), UDP 4789. Its
// endpoints are veths on the bridge, their MACs 02:42 + the IPv4 address. Nothing is learned
// from traffic (libnetwork's learning is behind its stale-FDB bugs): for each endpoint on another
// host this host writes a static FDB entry (its MAC → its host's VTEP) and a permanent neighbour
// entry (its address → its MAC) on the VXLAN device, which answers ARP from it (proxy), so the
// first packet to a container never floods or waits. The entries a network holds are read from
// the kernel once and then kept, so a restart rewrites nothing that is right.
import { invalid, SidecarError } from '../../errors.js';
import { ignoreMissing } from '../../kernel/ignore-missing.js';
import type { FdbEntry, Neighbour } from '../../kernel/types.js';
import type { DriverContext, NetworkDriver } from '../../network/driver.js';
import type { EndpointRecord, NetworkRecord, RemoteEndpoint } from '../../network/records.js';
import type { NetworkSpec } from '../../network/spec.js';
import { joinVeth, leaveVeth, vethPresent } from '../veth.js';

/** VXLAN's own headers: outer IPv4 (20), UDP (8), VXLAN (8), inner Ethernet (14). */
const OVERHEAD = 50;

interface Programmed {
  fdb: Map<string, string>; // mac → vtep
  neigh: Map<string, string>; // ip → mac
}

export class OverlayDriver implements NetworkDriver {
  readonly name = 'overlay';
  readonly capability = {
    scope: 'global',
    lbSandbox: true,
    firewall: false,
    noGateway: true,
    vni: true,
    macs: 'ip-derived',
  } as const;
  readonly #c: DriverContext;
  /** Per network, the peer entries the kernel holds (read once). */
  readonly #peers = new Map<string, Promise<Programmed>>();

  constructor(c: DriverContext) {
    this.#c = c;
  }

  validate(spec: NetworkSpec): void {
    const { vni, 'vxlan-port': port, ...rest } = spec.options;
    const other = Object.keys(rest);
    if (other.length > 0) throw invalid(`overlay options: vni, vxlan-port; not ${other.join(', ')}`);
    if (vni !== undefined && !(/^\d{1,8}$/.test(vni) && Number(vni) >= 1 && Number(vni) < 2 ** 24)) {
      throw invalid(`vni ${vni}: 1 to 16777215`);
    }
    if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
      throw invalid(`vxlan-port ${port}: 1 to 65535`);
    }
    if (spec.ipv6) throw invalid('an overlay network is IPv4 only, for now');
  }

  async device(id: string): Promise<string> {
    if (!(await this.#c.underlay?.())) {
      throw new SidecarError(
        'SIDECAR_CLUSTER_UNAVAILABLE',
        'an overlay network needs --advertise-addr (an underlay address of this host)',
      );
    }
    return `cnmd-${id.slice(0, 10)}`;
  }

  /** The network's MTU here: as asked, at most what the underlay carries less VXLAN's 50 bytes. */
  async #mtu(net: NetworkRecord): Promise<number> {
    const u = await this.#c.underlay?.();
    return Math.min(net.spec.mtu, (u?.mtu ?? 1500) - OVERHEAD);
  }

  async buildNetwork(net: NetworkRecord): Promise<void> {
    const host = await this.#c.host();
    const u = await this.#c.underlay?.();
    if (!u) throw new SidecarError('SIDECAR_CLUSTER_UNAVAILABLE', 'an overlay network needs --advertise-addr');
    const mtu = await this.#mtu(net);
    const links = new Set((await host.links()).map((l) => l.name));
    if (!links.has(net.device)) await host.addBridge(net.device, { mtu, up: true });
    const vx = vxlanName(net);
    if (!links.has(vx)) {
      await host.addVxlan({
        name: vx,
        vni: Number(net.spec.options.vni),
        port: Number(net.spec.options['vxlan-port'] ?? 4789),
        local: u.address,
        parent: u.link,
        learning: false,
        proxy: true,
        mtu,
      });
      await host.setLink(vx, { master: net.device, up: true });
    }
  }

  async deleteNetwork(net: NetworkRecord): Promise<void> {
    const host = await this.#c.host();
    this.#peers.delete(net.id);
    await ignoreMissing(host.deleteLink(vxlanName(net))); // its FDB and neighbours go with it
    await ignoreMissing(host.deleteLink(net.device));
  }

  async join(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    await joinVeth(await this.#c.host(), net, ep, await this.#mtu(net));
  }

  async leave(_net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    await leaveVeth(await this.#c.host(), ep);
  }

  async present(_net: NetworkRecord, ep: EndpointRecord): Promise<boolean> {
    return vethPresent(await this.#c.host(), ep);
  }

  async peer(net: NetworkRecord, ep: RemoteEndpoint, on: boolean): Promise<void> {
    if (!ep.mac || !ep.vtep) return; // a record without what a peer needs: nothing to reach
    const host = await this.#c.host();
    const vx = vxlanName(net);
    const p = await this.#programmed(net);
    if (on) {
      if (p.fdb.get(ep.mac) !== ep.vtep) {
        await host.addFdb(vx, { mac: ep.mac, dst: ep.vtep });
        p.fdb.set(ep.mac, ep.vtep);
      }
      if (ep.ip && p.neigh.get(ep.ip) !== ep.mac) {
        await host.addNeighbour(vx, { ip: ep.ip, mac: ep.mac });
        p.neigh.set(ep.ip, ep.mac);
      }
      return;
    }
    if (ep.ip && p.neigh.get(ep.ip) === ep.mac) {
      await host.deleteNeighbour(vx, ep.ip);
      p.neigh.delete(ep.ip);
    }
    const vtep = p.fdb.get(ep.mac);
    if (vtep !== undefined) {
      await host.deleteFdb(vx, { mac: ep.mac, dst: vtep });
      p.fdb.delete(ep.mac);
    }
  }

  async syncPeers(net: NetworkRecord, peers: RemoteEndpoint[]): Promise<void> {
    const p = await this.#programmed(net);
    const macs = new Set(peers.map((e) => e.mac));
    const ips = new Set(peers.map((e) => e.ip));
    const host = await this.#c.host();
    const vx = vxlanName(net);
    for (const [ip] of [...p.neigh]) {
      if (!ips.has(ip)) {
        await host.deleteNeighbour(vx, ip);
        p.neigh.delete(ip);
      }
    }
    for (const [mac, vtep] of [...p.fdb]) {
      if (!macs.has(mac)) {
        await host.deleteFdb(vx, { mac, dst: vtep });
        p.fdb.delete(mac);
      }
    }
    for (const e of peers) await this.peer(net, e, true);
  }

  /** What the VXLAN device holds, read from the kernel the first time. */
  #programmed(net: NetworkRecord): Promise<Programmed> {
    let p = this.#peers.get(net.id);
    if (!p) {
      p = (async () => {
        const host = await this.#c.host();
        const vx = vxlanName(net);
        const [fdb, neigh]: [FdbEntry[], Neighbour[]] = [await host.fdb(vx), await host.neighbours(vx)];
        return { fdb: new Map(fdb.map((e) => [e.mac, e.dst])), neigh: new Map(neigh.map((n) => [n.ip, n.mac])) };
      })();
      p.catch(() => this.#peers.delete(net.id));
      this.#peers.set(net.id, p);
    }
    return p;
  }
}

/** The VXLAN device of a network: cnvx<vni> (at most 12 characters). */
export function vxlanName(net: NetworkRecord): string {
  return `cnvx${net.spec.options.vni}`;
}
