// The daemon's core: networks and endpoints, as libnetwork's controller does them. Every change
// is recorded before it is made (state `creating`/`attaching`) and marked done after, so that a
// restart after kill -9 at any moment can finish or undo it (daemon/reconcile.ts). One change at a time.
import { createHash, randomBytes } from 'node:crypto';
import type { AddressRequest, Allocation, Ipam, Store } from '@cnmd/ipam';
import { describeError, SidecarError } from '../errors.js';
import type { Kernel, NetnsLinks } from '../kernel/types.js';
import { resolveSandbox } from '../sandbox/path.js';
import type { NetworkContext } from './context.js';
import type { Drivers, NetworkDriver } from './driver.js';
import type { ClusterHooks, DnsHooks, FirewallHooks, LbHooks } from './hooks.js';
import { endpointInfo, networkInfo } from './info.js';
import { attachMode, detachMode, modeOf, shareNames } from './modes.js';
import { Networks } from './networks.js';
import type { EndpointRecord, NetworkRecord, ServiceRecord } from './records.js';
import { configureEndpoint, handOverDefaultRoute, nextIfname } from './sandbox-config.js';
import { Services } from './services.js';
import type {
  AttachSpec,
  Controller,
  EndpointInfo,
  NetworkInfo,
  NetworkSpec,
  ServiceInfo,
  ServiceSpec,
} from './spec.js';
import { Records } from './store.js';

export interface ControllerOptions {
  store: Store;
  /** The network drivers (../drivers/): the controller knows them only through their API. */
  drivers: Drivers;
  ipam: Ipam;
  kernel: Kernel;
  firewall: FirewallHooks;
  dns: DnsHooks;
  /** The load balancer of vip services; without it only dnsrr services can be made. */
  lb?: LbHooks;
  /** The cluster: global networks, their services and addresses; absent without --cluster. */
  cluster?: ClusterHooks;
  /** Where failures that no caller hears of go (an undo that failed too); stderr by default. */
  log?: (line: string) => void;
}

export class NetworkController implements Controller, NetworkContext {
  readonly networks: Records<NetworkRecord>;
  readonly endpoints: Records<EndpointRecord>;
  readonly ipam: Ipam;
  readonly drivers: Drivers;
  readonly kernel: Kernel;
  readonly firewall: FirewallHooks;
  readonly dns: DnsHooks;
  readonly services: Services;
  readonly serviceRecords: Records<ServiceRecord>;
  /** Networks made, removed, and their addresses (networks.ts). */
  readonly nets: Networks;
  readonly lb: LbHooks | undefined;
  readonly cluster: ClusterHooks | undefined;
  /** Networks, endpoints and services that a restart could not bring back, by id (daemon/reconcile.ts). */
  readonly failed = new Map<string, { code: string; message: string }>();
  readonly log: (line: string) => void;
  #host: NetnsLinks | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(o: ControllerOptions) {
    this.networks = new Records(o.store, 'net');
    this.endpoints = new Records(o.store, 'ep');
    this.ipam = o.ipam;
    this.drivers = o.drivers;
    this.kernel = o.kernel;
    this.firewall = o.firewall;
    this.dns = o.dns;
    this.lb = o.lb;
    this.cluster = o.cluster;
    this.log = o.log ?? ((l) => process.stderr.write(`cnmd: ${l}\n`));
    this.serviceRecords = new Records(o.store, 'svc');
    this.nets = new Networks(this);
    this.services = new Services(this, this.serviceRecords, o.lb);
  }

  /** The links of the host: the namespace the daemon runs in. */
  async host(): Promise<NetnsLinks> {
    this.#host ??= await this.kernel.open();
    return this.#host;
  }

  async close(): Promise<void> {
    await this.#queue.catch(() => {});
    await this.#host?.close();
    this.#host = undefined;
  }

  /** A catch handler that logs what failed, for failures no caller hears of. */
  logged(what: string): (err: unknown) => void {
    return (err) => this.log(`${what}: ${describeError(err)}`);
  }

  /** Runs changes one at a time: two attaches must not both pick eth0 in one sandbox. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  // ---- networks ----

  listNetworks(): NetworkInfo[] {
    return this.networks.all().map((n) => this.#netInfo(n));
  }

  inspectNetwork(name: string): NetworkInfo {
    return this.#netInfo(this.network(name));
  }

  network(nameOrId: string): NetworkRecord {
    const n = this.networks.all().find((r) => r.spec.name === nameOrId || r.id === nameOrId);
    if (n?.state !== 'ready') throw new SidecarError('SIDECAR_NETWORK_NOT_FOUND', `no network ${nameOrId}`);
    return n;
  }

  createNetwork(spec: NetworkSpec, opts: { origin?: 'docker' } = {}): Promise<NetworkInfo> {
    return this.serial(async () => this.#netInfo(await this.nets.create(spec, opts)));
  }

  removeNetwork(name: string): Promise<void> {
    return this.serial(() => this.nets.remove(this.network(name)));
  }

  /** Not in the serial queue: each host's step of the rotation runs there. */
  async rotateKey(name: string): Promise<{ network: string; tag: number; ms: number }> {
    const net = this.network(name);
    if (net.spec.options.encrypted === undefined || !this.cluster) {
      throw new SidecarError('SIDECAR_INVALID_ARGUMENT', `network ${net.spec.name} is not encrypted`);
    }
    return { network: net.spec.name, ...(await this.cluster.rotateKeys(net)) };
  }

  buildNetwork(rec: NetworkRecord): Promise<void> {
    return this.nets.build(rec);
  }

  destroyNetwork(rec: NetworkRecord): Promise<void> {
    return this.nets.destroy(rec);
  }

  requestAddress(net: NetworkRecord, req: AddressRequest): Promise<Allocation> {
    return this.nets.requestAddress(net, req);
  }

  releaseAddress(net: NetworkRecord, address: string): Promise<void> {
    return this.nets.releaseAddress(net, address);
  }

  /** The driver of a network. */
  driverOf(net: NetworkRecord): NetworkDriver {
    return this.drivers.get(net.spec.driver);
  }

  // ---- services ----

  createService(spec: ServiceSpec): Promise<ServiceInfo> {
    return this.serial(() => this.services.create(spec));
  }

  listServices(): ServiceInfo[] {
    return this.services.records.all().map((s) => this.services.info(s));
  }

  inspectService(name: string, network?: string): ServiceInfo {
    return this.services.info(this.services.find(name, network));
  }

  removeService(name: string, network?: string): Promise<void> {
    return this.serial(() => this.services.remove(name, network));
  }

  // ---- endpoints ----

  listEndpoints(): EndpointInfo[] {
    return this.endpoints
      .all()
      .filter((e) => e.state === 'ready')
      .map((e) => this.#epInfo(e));
  }

  inspectContainer(nameOrSandbox: string): EndpointInfo[] {
    let key: string | undefined;
    try {
      key = resolveSandbox(nameOrSandbox, { host: true }).key;
    } catch {}
    const eps = this.listEndpoints().filter(
      (e) => e.name === nameOrSandbox || e.sandbox === nameOrSandbox || this.endpoints.get(e.id)?.sandboxKey === key,
    );
    if (eps.length === 0) throw new SidecarError('SIDECAR_ENDPOINT_NOT_FOUND', `no container ${nameOrSandbox}`);
    return eps;
  }

  attach(spec: AttachSpec): Promise<EndpointInfo> {
    return this.serial(() => this.attachNow(spec));
  }

  /** attach() without waiting its turn: for changes already running (the LB sandbox's endpoint). */
  async attachNow(spec: AttachSpec, opts: { lb?: boolean } = {}): Promise<EndpointInfo> {
    const mode = modeOf(spec.network);
    if (mode) return this.#epInfo(await attachMode(this, spec, mode));
    const net = this.network(spec.network);
    const ref = resolveSandbox(spec.sandbox);
    const mine = this.endpoints.all().filter((e) => e.sandboxKey === ref.key);
    if (mine.some((e) => e.mode === 'none' || e.mode === 'host')) {
      throw new SidecarError('SIDECAR_ENDPOINT_EXISTS', `${spec.sandbox} is in --network ${mine[0]!.mode} mode`);
    }
    if (mine.some((e) => e.network === net.id)) {
      throw new SidecarError('SIDECAR_ENDPOINT_EXISTS', `${spec.sandbox} is attached to ${net.spec.name} already`);
    }
    const name = spec.name ?? mine[0]?.name;
    if (name && this.endpoints.all().some((e) => e.name === name && e.sandboxKey !== ref.key)) {
      throw new SidecarError('SIDECAR_NAME_IN_USE', `the name ${name} is used by another sandbox`);
    }
    if (spec.service) this.services.findForTask(spec.service, net);
    await this.firewall.checkPorts(spec.publish);
    const ep: EndpointRecord = {
      id: randomBytes(32).toString('hex'),
      containerId: spec.containerId ?? createHash('sha256').update(`cnmd-sandbox:${ref.key}`).digest('hex'),
      sandbox: ref.path,
      sandboxKey: ref.key,
      network: net.id,
      aliases: spec.aliases,
      ifname: await nextIfname(this.kernel, ref.path, mine, spec.ifname),
      hostIf: `vcn${randomBytes(5).toString('hex')}`,
      publish: spec.publish,
      defaultRoute: false,
      state: 'attaching',
    };
    if (ref.netnsName) ep.netnsName = ref.netnsName;
    if (name) ep.name = name;
    if (spec.hostname) ep.hostname = spec.hostname;
    if (spec.service) {
      ep.service = spec.service;
      ep.weight = spec.weight ?? 1;
    }
    if (opts.lb) ep.lb = true;
    if (spec.origin) ep.origin = spec.origin;
    if (spec.dns) ep.dns = spec.dns;
    if (spec.defaultRoute) ep.wantDefault = true;
    // Addresses first, then the record that names them (one write fewer per attach): a crash
    // between the two leaves addresses no record holds, which reconcile returns to the pool.
    try {
      const a4 = await this.requestAddress(net, { ...(spec.ip ? { address: spec.ip } : {}), mac: spec.mac ?? true });
      ep.ip = a4.address;
      if (a4.mac) ep.mac = a4.mac;
      if (net.pool6)
        ep.ip6 = (await this.ipam.requestAddress(net.pool6, spec.ip6 ? { address: spec.ip6 } : {})).address;
      await this.endpoints.put(ep);
      await this.buildEndpoint(net, ep);
      ep.state = 'ready';
      await this.endpoints.put(ep);
      if (net.spec.scope === 'global') this.cluster?.publish(net, ep, true);
      // A task joins its service only now that its container is up (moby/moby#38841).
      await this.services.touched(ep);
    } catch (err) {
      await this.destroyEndpoint(ep).catch(this.logged(`undoing the attach of ${spec.sandbox} to ${net.spec.name}`));
      throw err;
    }
    return this.#epInfo(ep);
  }

  /** Makes the kernel side of an endpoint, its DNS and its published ports. */
  async buildEndpoint(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    await this.driverOf(net).join(net, ep);
    const sb = await this.kernel.open(ep.sandbox);
    try {
      await configureEndpoint(sb, net, ep, this.endpoints);
    } finally {
      await sb.close();
    }
    for (const p of ep.publish) await this.firewall.publish(net, ep, p);
    if (!ep.lb) await this.dns.join(ep, net, this.#sandboxNetworks(ep.sandboxKey, ep));
    for (const other of this.#sharing(ep)) await shareNames(this, other);
  }

  /** Containers in `container:<ep's name>` mode. */
  #sharing(ep: EndpointRecord): EndpointRecord[] {
    return ep.name ? this.endpoints.all().filter((e) => e.mode === 'container' && e.shares === ep.name) : [];
  }

  detach(sandbox: string, network?: string): Promise<EndpointInfo[]> {
    return this.serial(async () => {
      let key: string | undefined;
      try {
        key = resolveSandbox(sandbox, { host: true }).key;
      } catch {}
      const eps = this.endpoints
        .all()
        .filter((e) => e.sandboxKey === key || e.sandbox === sandbox || e.netnsName === sandbox)
        .filter((e) => network === undefined || e.network === (modeOf(network) ? network : this.network(network).id));
      if (eps.length === 0) {
        throw new SidecarError(
          'SIDECAR_ENDPOINT_NOT_FOUND',
          `${sandbox} is not attached${network ? ` to ${network}` : ''}`,
        );
      }
      const out = eps.map((e) => this.#epInfo(e));
      for (const ep of eps) await this.destroyEndpoint(ep);
      return out;
    });
  }

  /** Undoes whatever part of an endpoint exists, in reverse order; safe on a half-made one. */
  async destroyEndpoint(ep: EndpointRecord): Promise<void> {
    if (ep.mode) return detachMode(this, ep);
    const net = this.networks.get(ep.network);
    if (net) for (const other of this.#sharing(ep)) this.dns.alias(net, other, false);
    for (const p of ep.publish) if (net) await this.firewall.unpublish(net, ep, p);
    await this.dns.leave(
      ep,
      net,
      this.#sandboxNetworks(ep.sandboxKey, ep).filter((n) => n.id !== ep.network),
    );
    // Without its network (a record a crash left), what is left of it is a stray link that
    // reconcile deletes.
    if (net) await this.driverOf(net).leave(net, ep);
    // The record goes before its addresses: a kill -9 between the two leaves an address that no
    // record holds, which the restart gives back to the pool. The other way round it left a
    // record at an address IPAM would hand out again (one address twice on the network).
    await this.endpoints.delete(ep.id);
    this.failed.delete(ep.id);
    if (net) {
      const what = `releasing the address of endpoint ${ep.id.slice(0, 12)}`;
      if (net.spec.scope === 'global') this.cluster?.publish(net, ep, false);
      if (ep.ip) await this.releaseAddress(net, ep.ip).catch(this.logged(what));
      if (ep.ip6 && net.pool6) await this.ipam.releaseAddress(net.pool6, ep.ip6).catch(this.logged(what));
    }
    await handOverDefaultRoute(this.kernel, this.networks, this.endpoints, ep).catch(
      this.logged(`handing over the default route of ${ep.sandbox}`),
    );
    await this.services.touched(ep);
  }

  #sandboxNetworks(key: string, self: EndpointRecord): NetworkRecord[] {
    const ids = new Set(
      this.endpoints
        .all()
        .filter((e) => e.sandboxKey === key && (e.state === 'ready' || e.id === self.id))
        .map((e) => e.network),
    );
    return this.networks.all().filter((n) => ids.has(n.id));
  }

  #netInfo(n: NetworkRecord): NetworkInfo {
    const info = networkInfo(n, this.endpoints.all());
    const keys = n.spec.options.encrypted !== undefined ? this.cluster?.keysStatus(n) : undefined;
    if (keys) info.encryption = keys;
    return info;
  }

  #epInfo(e: EndpointRecord): EndpointInfo {
    return endpointInfo(e, this.networks.get(e.network), this.failed.get(e.id));
  }
}
