// The daemon's core: networks and endpoints, as libnetwork's controller does them. Every change
// is recorded before it is made (state `creating`/`attaching`) and marked done after, so that a
// restart after kill -9 at any moment can finish or undo it (reconcile.ts). One change at a time.
import { createHash, randomBytes } from 'node:crypto';
import type { Ipam, Store } from '@cnmd/ipam';
import { describeError, SidecarError } from './errors.js';
import type { DnsHooks, FirewallHooks, LbHooks } from './hooks.js';
import type { Kernel, NetnsLinks } from './kernel/types.js';
import type {
  AttachSpec,
  Controller,
  EndpointInfo,
  NetworkInfo,
  NetworkSpec,
  ServiceInfo,
  ServiceSpec,
} from './model.js';
import { attachMode, detachMode, modeOf, shareNames } from './modes.js';
import type { EndpointRecord, NetworkRecord } from './records.js';
import { resolveSandbox } from './sandbox-path.js';
import { Services } from './services.js';
import { Records } from './state.js';

export interface ControllerOptions {
  store: Store;
  ipam: Ipam;
  kernel: Kernel;
  firewall: FirewallHooks;
  dns: DnsHooks;
  /** The load balancer of vip services; without it only dnsrr services can be made. */
  lb?: LbHooks;
  /** Where failures that no caller hears of go (an undo that failed too); stderr by default. */
  log?: (line: string) => void;
}

export class NetworkController implements Controller {
  readonly networks: Records<NetworkRecord>;
  readonly endpoints: Records<EndpointRecord>;
  readonly ipam: Ipam;
  readonly kernel: Kernel;
  readonly firewall: FirewallHooks;
  readonly dns: DnsHooks;
  readonly services: Services;
  readonly lb: LbHooks | undefined;
  /** Networks, endpoints and services that a restart could not bring back, by id (reconcile.ts). */
  readonly failed = new Map<string, { code: string; message: string }>();
  readonly log: (line: string) => void;
  #host: NetnsLinks | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(o: ControllerOptions) {
    this.networks = new Records(o.store, 'net');
    this.endpoints = new Records(o.store, 'ep');
    this.ipam = o.ipam;
    this.kernel = o.kernel;
    this.firewall = o.firewall;
    this.dns = o.dns;
    this.lb = o.lb;
    this.log = o.log ?? ((l) => process.stderr.write(`cnmd: ${l}\n`));
    this.services = new Services(this, new Records(o.store, 'svc'), o.lb);
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
    return this.networks.all().map((n) => this.#networkInfo(n));
  }

  inspectNetwork(name: string): NetworkInfo {
    return this.#networkInfo(this.network(name));
  }

  network(nameOrId: string): NetworkRecord {
    const n = this.networks.all().find((r) => r.spec.name === nameOrId || r.id === nameOrId);
    if (n?.state !== 'ready') throw new SidecarError('SIDECAR_NETWORK_NOT_FOUND', `no network ${nameOrId}`);
    return n;
  }

  createNetwork(spec: NetworkSpec, opts: { origin?: 'docker' } = {}): Promise<NetworkInfo> {
    return this.serial(async () => {
      if (this.networks.all().some((n) => n.spec.name === spec.name)) {
        throw new SidecarError('SIDECAR_NETWORK_EXISTS', `network ${spec.name} exists already`);
      }
      const host = await this.host();
      const id = randomBytes(32).toString('hex');
      let device = `cnmd-${id.slice(0, 10)}`;
      if (spec.driver === 'macvlan') {
        device = spec.options.parent!;
        await host.link(device); // SIDECAR_LINK_NOT_FOUND names a missing parent
      }
      const avoid = (await host.routes(4)).filter((r) => r.dst !== 'default').map((r) => r.dst);
      const pool4 = await this.ipam.requestPool({
        ...(spec.subnet ? { subnet: spec.subnet } : { avoid }),
        ...(spec.ipRange ? { ipRange: spec.ipRange } : {}),
        ...(spec.gateway ? { gateway: spec.gateway } : {}),
      });
      const rec: NetworkRecord = {
        id,
        spec,
        device,
        pool4: pool4.id,
        subnet: pool4.subnet,
        created: new Date().toISOString(),
        state: 'creating',
        ...(opts.origin ? { origin: opts.origin } : {}),
      };
      if (pool4.gateway) rec.gateway = pool4.gateway;
      try {
        if (spec.ipv6) {
          const pool6 = await this.ipam.requestPool({
            ...(spec.subnet6 ? { subnet: spec.subnet6 } : { family: 6 }),
            ...(spec.gateway6 ? { gateway: spec.gateway6 } : {}),
          });
          rec.pool6 = pool6.id;
          rec.subnet6 = pool6.subnet;
          if (pool6.gateway) rec.gateway6 = pool6.gateway;
        }
        await this.networks.put(rec);
        await this.buildNetwork(rec);
        rec.state = 'ready';
        await this.networks.put(rec);
      } catch (err) {
        await this.destroyNetwork(rec).catch(this.logged(`undoing network ${spec.name}`));
        throw err;
      }
      return this.#networkInfo(rec);
    });
  }

  /** Makes the kernel side of a network: its bridge with the gateway addresses, its rules. */
  async buildNetwork(rec: NetworkRecord): Promise<void> {
    if (rec.spec.driver === 'bridge') {
      const host = await this.host();
      const have = (await host.links()).some((l) => l.name === rec.device);
      if (!have) await host.addBridge(rec.device, { mtu: rec.spec.mtu, up: true });
      const addrs = new Set((await host.addresses(rec.device)).map((a) => a.cidr));
      for (const [gw, subnet] of [
        [rec.gateway, rec.subnet],
        [rec.gateway6, rec.subnet6],
      ]) {
        const cidr = gw && subnet ? `${gw}/${subnet.split('/')[1]}` : undefined;
        if (cidr && !addrs.has(cidr)) await host.addAddress(rec.device, cidr);
      }
      await this.firewall.addNetwork(rec);
    }
  }

  removeNetwork(name: string): Promise<void> {
    return this.serial(async () => {
      const rec = this.network(name);
      const eps = this.endpoints.all().filter((e) => e.network === rec.id && !e.lb);
      const svcs = this.services.records.all().filter((s) => s.network === rec.id);
      if (svcs.length > 0) {
        throw new SidecarError(
          'SIDECAR_NETWORK_IN_USE',
          `network ${name} has ${svcs.length} service(s): remove them first`,
        );
      }
      if (eps.length > 0) {
        throw new SidecarError(
          'SIDECAR_NETWORK_IN_USE',
          `network ${name} has ${eps.length} endpoint(s): detach them first`,
        );
      }
      await this.destroyNetwork(rec);
    });
  }

  /** Undoes whatever part of a network exists; safe on a half-made one. */
  async destroyNetwork(rec: NetworkRecord): Promise<void> {
    if (rec.spec.driver === 'bridge') {
      await this.firewall.removeNetwork(rec);
      await ignoreMissing((await this.host()).deleteLink(rec.device));
    }
    for (const pool of [rec.pool4, rec.pool6]) {
      if (!pool || !this.ipam.pool(pool)) continue;
      for (const a of this.ipam.addresses(pool)) await this.ipam.releaseAddress(pool, a.address);
      await this.ipam.releasePool(pool);
    }
    await this.networks.delete(rec.id);
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
      .map((e) => this.#endpointInfo(e));
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
    if (mode) return this.#endpointInfo(await attachMode(this, spec, mode));
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
      ifname: spec.ifname ?? (await this.#nextIfname(ref.path, mine)),
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
    if (spec.defaultRoute) ep.wantDefault = true;
    // Addresses first, then the record that names them (one write fewer per attach): a crash
    // between the two leaves addresses no record holds, which reconcile returns to the pool.
    try {
      const a4 = await this.ipam.requestAddress(net.pool4, {
        ...(spec.ip ? { address: spec.ip } : {}),
        mac: spec.mac ?? true,
      });
      ep.ip = a4.address;
      if (a4.mac) ep.mac = a4.mac;
      if (net.pool6)
        ep.ip6 = (await this.ipam.requestAddress(net.pool6, spec.ip6 ? { address: spec.ip6 } : {})).address;
      await this.endpoints.put(ep);
      await this.buildEndpoint(net, ep);
      ep.state = 'ready';
      await this.endpoints.put(ep);
      // A task joins its service only now that its container is up (moby/moby#38841).
      await this.services.touched(ep);
    } catch (err) {
      await this.destroyEndpoint(ep).catch(this.logged(`undoing the attach of ${spec.sandbox} to ${net.spec.name}`));
      throw err;
    }
    return this.#endpointInfo(ep);
  }

  /** Makes the kernel side of an endpoint, its DNS and its published ports. */
  async buildEndpoint(net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    const host = await this.host();
    const { mtu } = net.spec;
    const peer = { name: ep.ifname, netns: ep.sandbox, mtu, ...(ep.mac ? { mac: ep.mac } : {}) };
    if (net.spec.driver === 'bridge') {
      await host.addVeth({ name: ep.hostIf, master: net.device, mtu, up: true, peer });
      await host.setHairpin(ep.hostIf, true);
    } else {
      await host.addMacvlan({ ...peer, parent: net.device });
    }
    const sb = await this.kernel.open(ep.sandbox);
    try {
      // arp_notify before the link comes up: the kernel then announces the new MAC itself.
      await sb.setArpNotify(ep.ifname, true);
      if (ep.ip) await sb.addAddress(ep.ifname, `${ep.ip}/${net.subnet.split('/')[1]}`);
      if (ep.ip6 && net.subnet6) await sb.addAddress(ep.ifname, `${ep.ip6}/${net.subnet6.split('/')[1]}`);
      await sb.setLink('lo', { up: true });
      await sb.setLink(ep.ifname, { up: true });
      // The first network with a gateway gives the default route (internal ones give none),
      // unless an endpoint asks for it (--default-route).
      if (!net.spec.internal && net.gateway) await this.#defaultRoute(sb, net, ep, ep.wantDefault === true);
    } finally {
      await sb.close();
    }
    for (const p of ep.publish) await this.firewall.publish(net, ep, p);
    if (!ep.lb) await this.dns.join(ep, net, this.#sandboxNetworks(ep.sandboxKey, ep));
    for (const other of this.#sharing(ep)) await shareNames(this, other);
  }

  /** Points the sandbox's default route at the network's gateway: when it has none, or `force`. */
  async #defaultRoute(sb: NetnsLinks, net: NetworkRecord, ep: EndpointRecord, force: boolean): Promise<void> {
    if (force || !(await sb.routes(4)).some((r) => r.dst === 'default')) {
      await sb.addRoute({ dst: 'default', gateway: net.gateway!, replace: true });
      ep.defaultRoute = true;
      for (const other of this.endpoints.all()) {
        if (other.sandboxKey === ep.sandboxKey && other.id !== ep.id && other.defaultRoute) {
          await this.endpoints.put({ ...other, defaultRoute: false });
        }
      }
    }
    if (net.gateway6 && (force || !(await sb.routes(6)).some((r) => r.dst === 'default'))) {
      await sb.addRoute({ dst: 'default', gateway: net.gateway6, replace: true });
    }
  }

  /** The endpoint that gave the default route went: the next network with a gateway gives it. */
  async #handOverDefaultRoute(gone: EndpointRecord): Promise<void> {
    if (!gone.defaultRoute) return;
    const next = this.endpoints
      .all()
      .find((e) => e.sandboxKey === gone.sandboxKey && e.id !== gone.id && e.state === 'ready' && !e.mode);
    const net = next && this.networks.get(next.network);
    if (!next || !net?.gateway || net.spec.internal) return;
    const sb = await this.kernel.open(next.sandbox).catch(() => undefined);
    if (!sb) return;
    try {
      await this.#defaultRoute(sb, net, next, true);
      await this.endpoints.put(next);
    } finally {
      await sb.close();
    }
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
      const out = eps.map((e) => this.#endpointInfo(e));
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
    if (net?.spec.driver === 'macvlan') {
      const sb = await this.kernel.open(ep.sandbox).catch(() => undefined);
      if (sb) await ignoreMissing(sb.deleteLink(ep.ifname)).finally(() => sb.close());
    } else {
      // The host end: deleting it deletes the pair. Gone already when the sandbox died.
      await ignoreMissing((await this.host()).deleteLink(ep.hostIf));
    }
    if (net) {
      const what = `releasing the address of endpoint ${ep.id.slice(0, 12)}`;
      if (ep.ip) await this.ipam.releaseAddress(net.pool4, ep.ip).catch(this.logged(what));
      if (ep.ip6 && net.pool6) await this.ipam.releaseAddress(net.pool6, ep.ip6).catch(this.logged(what));
    }
    await this.endpoints.delete(ep.id);
    this.failed.delete(ep.id);
    await this.#handOverDefaultRoute(ep).catch(this.logged(`handing over the default route of ${ep.sandbox}`));
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

  async #nextIfname(path: string, mine: EndpointRecord[]): Promise<string> {
    const sb = await this.kernel.open(path);
    try {
      const taken = new Set([...(await sb.links()).map((l) => l.name), ...mine.map((e) => e.ifname)]);
      for (let i = 0; ; i++) if (!taken.has(`eth${i}`)) return `eth${i}`;
    } finally {
      await sb.close();
    }
  }

  #networkInfo(n: NetworkRecord): NetworkInfo {
    const info: NetworkInfo = {
      ...n.spec,
      id: n.id,
      device: n.device,
      subnet: n.subnet,
      created: n.created,
      endpoints: this.endpoints.all().filter((e) => e.network === n.id && e.state === 'ready').length,
    };
    if (n.gateway) info.gateway = n.gateway;
    if (n.subnet6) info.subnet6 = n.subnet6;
    if (n.gateway6) info.gateway6 = n.gateway6;
    return info;
  }

  #endpointInfo(e: EndpointRecord): EndpointInfo {
    const info: EndpointInfo = {
      id: e.id,
      sandbox: e.sandbox,
      network: this.networks.get(e.network)?.spec.name ?? e.network,
      aliases: e.aliases,
      ifname: e.ifname,
      mac: e.mac ?? '',
      ip: e.ip ?? '',
      publish: e.publish,
      status: this.failed.has(e.id) ? 'failed' : 'ready',
    };
    const failure = this.failed.get(e.id);
    if (failure) info.error = failure;
    if (e.name) info.name = e.name;
    if (e.ip6) info.ip6 = e.ip6;
    return info;
  }
}

/** Deleting what is already gone is fine when undoing. */
export async function ignoreMissing(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if ((err as { code?: string }).code !== 'SIDECAR_LINK_NOT_FOUND') throw err;
  }
}
