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
import type { DriverContext, NetworkDriver, NetworkKeys } from '../../network/driver.js';
import { parseDuration } from '../../network/parse.js';
import type { EndpointRecord, NetworkRecord, RemoteEndpoint } from '../../network/records.js';
import type { NetworkSpec } from '../../network/spec.js';
import { joinVeth, leaveVeth, vethPresent } from '../veth.js';
import { applyTunnel, noStates, removeTunnel, type Tunnel } from './ipsec.js';

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
    encryption: true,
  } as const;
  readonly #c: DriverContext;
  /** Per network, the peer entries the kernel holds (read once). */
  readonly #peers = new Map<string, Promise<Programmed>>();
  /** Per encrypted network, its keys as the cluster last told. */
  readonly #keys = new Map<string, NetworkKeys>();

  constructor(c: DriverContext) {
    this.#c = c;
  }

  validate(spec: NetworkSpec): void {
    const { vni, 'vxlan-port': port, encrypted, 'key-rotation': rotation, ...rest } = spec.options;
    const other = Object.keys(rest);
    if (other.length > 0) {
      throw invalid(`overlay options: vni, vxlan-port, encrypted, key-rotation; not ${other.join(', ')}`);
    }
    if (encrypted !== undefined && encrypted !== '' && encrypted !== 'true') {
      throw invalid(`encrypted ${encrypted}: give --opt encrypted (or encrypted=true), or leave it out`);
    }
    if (rotation !== undefined) {
      if (encrypted === undefined) throw invalid('key-rotation is an option of an encrypted network');
      const ms = parseDuration(rotation);
      if (ms === undefined || ms < 10_000 || ms > 365 * 86_400_000) {
        throw invalid(`key-rotation ${rotation}: a duration from 10s to 365d, as 90s, 30m, 12h, 7d`);
      }
    }
    if (vni !== undefined && !(/^\d{1,8}$/.test(vni) && Number(vni) >= 1 && Number(vni) < 2 ** 24)) {
      throw invalid(`vni ${vni}: 1 to 16777215`);
    }
    if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
      throw invalid(`vxlan-port ${port}: 1 to 65535`);
    }
    if (spec.ipv6) throw invalid('an overlay network is IPv4 only, for now');
  }

  async device(id: string, spec: NetworkSpec): Promise<string> {
    if (!(await this.#c.underlay?.())) {
      throw new SidecarError(
        'SIDECAR_CLUSTER_UNAVAILABLE',
        'an overlay network needs --advertise-addr (an underlay address of this host)',
      );
    }
    if (encrypted(spec)) await (await this.#xfrm()).probe(); // SIDECAR_ESP_UNAVAILABLE: nothing is made
    return `cnmd-${id.slice(0, 10)}`;
  }

  #xfrm() {
    if (!this.#c.xfrm) throw new SidecarError('SIDECAR_ESP_UNAVAILABLE', 'this daemon has no IPsec');
    return this.#c.xfrm();
  }

  /** An encrypted network's tunnel ends here; undefined for a clear one. */
  async #tunnel(net: NetworkRecord): Promise<Tunnel | undefined> {
    if (!encrypted(net.spec)) return undefined;
    const u = await this.#c.underlay?.();
    if (!u) throw new SidecarError('SIDECAR_CLUSTER_UNAVAILABLE', 'an overlay network needs --advertise-addr');
    return { network: net.id, reqid: Number(net.spec.options.vni), port: port(net), local: u.address };
  }

  /** An encrypted network's IPsec with these peers (VTEPs), its keys as last told. */
  async #secure(net: NetworkRecord, vteps: Iterable<string>): Promise<void> {
    const t = await this.#tunnel(net);
    if (t) await applyTunnel(await this.#xfrm(), t, [...new Set(vteps)].sort(), this.#keys.get(net.id));
  }

  async rekey(net: NetworkRecord, keys: NetworkKeys): Promise<boolean> {
    const first = !this.#keys.has(net.id);
    this.#keys.set(net.id, keys);
    const vteps = [...(await this.#programmed(net)).fdb.values()];
    const t = await this.#tunnel(net);
    // The first keys since this daemon started, and the kernel has none of the network's states:
    // made anew (this host is new to it) or lost (a reboot; the cluster knows which).
    const lost = first && t !== undefined && (await noStates(await this.#xfrm(), t));
    await this.#secure(net, vteps);
    return lost;
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
        port: port(net),
        local: u.address,
        parent: u.link,
        learning: false,
        proxy: true,
        mtu,
      });
      // Encrypted: no clear VXLAN in or out from the first packet (ipsec.ts), before it is up.
      await this.#secure(net, []);
      await host.setLink(vx, { master: net.device, up: true });
    } else {
      await this.#secure(net, (await this.#programmed(net)).fdb.values());
    }
  }

  async deleteNetwork(net: NetworkRecord): Promise<void> {
    const host = await this.#c.host();
    this.#peers.delete(net.id);
    this.#keys.delete(net.id);
    await ignoreMissing(host.deleteLink(vxlanName(net))); // its FDB and neighbours go with it
    await ignoreMissing(host.deleteLink(net.device));
    const t = await this.#tunnel(net).catch(() => undefined);
    if (t) await removeTunnel(await this.#xfrm(), t);
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
        // A new peer host: its states and policy before the first frame to it.
        if (![...p.fdb.values()].includes(ep.vtep)) await this.#secure(net, [...p.fdb.values(), ep.vtep]);
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
      // Its host's last endpoint went: so do its states and policy.
      if (![...p.fdb.values()].includes(vtep)) await this.#secure(net, p.fdb.values());
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
    await this.#secure(net, p.fdb.values());
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

const encrypted = (spec: NetworkSpec) => spec.options.encrypted !== undefined;

/** A network's VXLAN port: its own for an encrypted one (claimed in the cluster), else 4789. */
const port = (net: NetworkRecord) => Number(net.spec.options['vxlan-port'] ?? 4789);

/** The VXLAN device of a network: cnvx<vni> (at most 12 characters). */
export function vxlanName(net: NetworkRecord): string {
  return `cnvx${net.spec.options.vni}`;
}
