// What the cluster's view tells, applied to this host: a global network made or removed here, a
// service balanced and answered or no longer, an endpoint of another host answering by name in
// the network's sandboxes here and backing its service's VIP. Each change runs in turn with the
// controller's own (its serial queue); one that fails is logged with its code and the next goes
// on. A network's services and endpoints that arrive before the network wait in the view: they
// are applied when the network is made.
import { describeError } from '../errors.js';
import type { NetworkController } from '../network/controller.js';
import type { EndpointRecord, NetworkRecord, RemoteEndpoint, ServiceRecord } from '../network/records.js';
import type { Cluster, ClusterSink } from './cluster.js';
import type { ClusterNetwork, ClusterService } from './records.js';

export class ClusterApply implements ClusterSink {
  readonly #c: NetworkController;
  readonly #cluster: Cluster;
  readonly #log: (line: string) => void;

  constructor(c: NetworkController, cluster: Cluster, log: (line: string) => void) {
    this.#c = c;
    this.#cluster = cluster;
    this.#log = log;
  }

  network(now: ClusterNetwork | undefined, old: ClusterNetwork | undefined): void {
    const g = now ?? old!;
    this.#run(`network ${g.spec.name}`, async () => {
      if (!now) return this.#c.nets.drop(g.id);
      const made = await this.#c.nets.adopt(now);
      if (!made) return;
      // What of it arrived first waited in the view.
      for (const s of this.#cluster.services.values()) if (s.network === made.id) await this.#adoptService(s);
      await this.#rekey(made);
      for (const e of this.#cluster.remoteEndpoints(made)) await this.#endpoint(made, e, true);
    });
  }

  keys(network: string): void {
    this.#run('keys', async () => {
      const net = this.#c.networks.get(network);
      if (net?.state === 'ready') await this.#rekey(net); // else when the network is made here
    });
  }

  /** An encrypted network's keys to its driver; then the cluster learns this host has them. */
  async #rekey(net: NetworkRecord): Promise<void> {
    const keys = this.#cluster.networkKeys(net);
    const driver = this.#c.driverOf(net);
    if (!keys || !driver.rekey) return;
    const lost = await driver.rekey(net, keys);
    await this.#cluster.ackKeys(net, keys, lost);
  }

  service(now: ClusterService | undefined, old: ClusterService | undefined): void {
    const s = now ?? old!;
    this.#run(`service ${s.spec.name}`, async () => {
      if (now) await this.#adoptService(now);
      else await this.#c.services.drop(s.id);
    });
  }

  endpoint(now: RemoteEndpoint | undefined, old: RemoteEndpoint | undefined): void {
    const e = now ?? old!;
    this.#run(`endpoint ${e.name ?? e.id.slice(0, 12)} of host ${e.host}`, async () => {
      const net = this.#c.networks.get(e.network);
      if (net?.state !== 'ready') return; // applied when the network is made here
      if (old) await this.#endpoint(net, old, false);
      if (now) await this.#endpoint(net, now, true);
    });
  }

  own(): EndpointRecord[] {
    return this.#c.endpoints
      .all()
      .filter(
        (e) => e.state === 'ready' && !e.mode && !e.lb && this.#c.networks.get(e.network)?.spec.scope === 'global',
      );
  }

  async #adoptService(s: ClusterService): Promise<void> {
    if (!this.#c.networks.get(s.network)) return; // applied when the network is made here
    const rec: ServiceRecord = { id: s.id, spec: s.spec, network: s.network };
    if (s.vip) rec.vip = s.vip;
    if (s.mark !== undefined) rec.mark = s.mark;
    await this.#c.services.adopt(rec);
  }

  async #endpoint(net: NetworkRecord, e: RemoteEndpoint, on: boolean): Promise<void> {
    // Reachable first (an overlay's FDB and neighbour entries), then by name.
    await this.#c.driverOf(net).peer?.(net, e, on);
    this.#c.dns.remote(net, e, on);
    await this.#c.services.touched(e);
  }

  /** After a resync, each network's peers are exactly the cluster's (what is right stays). */
  synced(): void {
    this.#run('peers', async () => {
      for (const net of this.#c.networks.all()) {
        const driver = net.spec.scope === 'global' ? this.#c.driverOf(net) : undefined;
        if (driver) await this.#rekey(net);
        await driver?.syncPeers?.(net, this.#cluster.remoteEndpoints(net));
      }
    });
  }

  #run(what: string, fn: () => Promise<unknown>): void {
    void this.#c.serial(fn).catch((err) => this.#log(`cluster: ${what}: ${describeError(err)}`));
  }
}
