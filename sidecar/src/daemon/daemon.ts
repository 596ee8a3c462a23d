// Wires the daemon together: the state file, IPAM, the kernel, the firewall, DNS, the
// controller and the admin API; reconciles on start; notices sandboxes that went away.
import { writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DnsServer } from '@cnmd/dns';
import { FileStore, Ipam } from '@cnmd/ipam';
import { ApiServer } from '../api/server.js';
import { ClusterApply } from '../cluster/apply.js';
import { Cluster } from '../cluster/cluster.js';
import { DnsWiring } from '../dns/wiring.js';
import { DockerClient } from '../docker/client.js';
import { DockerSource } from '../docker/source.js';
import { builtinDrivers } from '../drivers/index.js';
import { describeError, SidecarError } from '../errors.js';
import { NetlinkKernel } from '../kernel/backends/netlink.js';
import type { Kernel } from '../kernel/types.js';
import { Xfrm } from '../kernel/xfrm/xfrm.js';
import { checkLbDataplane, type LbDataplaneMode } from '../lb/dataplane.js';
import { LbWiring } from '../lb/wiring.js';
import { NetworkController } from '../network/controller.js';
import { Drivers } from '../network/driver.js';
import type { FirewallHooks } from '../network/hooks.js';
import type { NetworkSpec, ServiceSpec } from '../network/spec.js';
import { configureSandboxPaths, sandboxKey } from '../sandbox/path.js';
import { type LogFormat, Logger, type LogLevel } from '../telemetry/log.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { type ReconcileReport, reconcile } from './reconcile.js';

export interface DaemonConfig {
  /** Where the state file lives (default /var/lib/cnmd). */
  stateDir: string;
  /** The admin API's unix socket (default /run/cnmd/cnmd.sock). */
  socket: string;
  /** An admin API TCP listener; off unless set. */
  apiTcp?: { host: string; port: number };
  /** The bearer token of the TCP listener (read from --api-token-file); required with apiTcp. */
  apiToken?: string;
  /** Upstream DNS servers; default the nameservers of resolvConf. */
  dnsUpstreams?: string[];
  /** The host's resolv.conf: upstreams, and search/options for sandboxes. */
  resolvConf: string;
  /** How often to look for sandboxes that went away, in ms (0: never). */
  sweepMs: number;
  /** The Docker engine's socket: labelled containers are attached (docker/source.ts); off unless set. */
  dockerSocket?: string;
  /** The load balancers' data plane: IPVS where the kernel offers it (auto), or as told. */
  lbDataplane: LbDataplaneMode;
  /** Only containers labelled cnmd.scope=this (several cnmd on one engine); else only unscoped ones. */
  dockerScope?: string;
  /** The engine's sandbox folder (SandboxKeys) as this daemon sees it. */
  dockerNetnsDir: string;
  /** Whether a network named by a container's label is created when missing; default: unless
   * the config declares networks. */
  dockerCreateNetworks?: boolean;
  /** At most this many networks made from labels exist at once (each takes a local pool). */
  dockerMaxNetworks: number;
  /** The NATS servers of the cluster this host joins (cluster/); alone without. */
  cluster?: string[];
  /** This host's name in the cluster. */
  hostId?: string;
  /** This host's address between hosts, told to the others. */
  advertiseAddr?: string;
  clusterCreds?: string;
  clusterTlsCa?: string;
  /** A host silent this long is withdrawn (ms). */
  clusterGraceMs: number;
  /** Networks to create at start when none of that name exists (the config file's). */
  networks?: NetworkSpec[];
  /** Services to create at start when none of that name exists on that network. */
  services?: ServiceSpec[];
  /** Where /metrics and the status page are served (telemetry/); nothing listens unless set. */
  metricsAddr?: { host: string; port: number };
  logFormat: LogFormat;
  logLevel: LogLevel;
}

export function defaultConfig(): DaemonConfig {
  return {
    stateDir: '/var/lib/cnmd',
    socket: '/run/cnmd/cnmd.sock',
    resolvConf: '/etc/resolv.conf',
    sweepMs: 2000,
    lbDataplane: 'auto',
    dockerNetnsDir: '/run/docker/netns',
    dockerMaxNetworks: 16,
    clusterGraceMs: 10_000,
    logFormat: 'text',
    logLevel: 'info',
  };
}

export interface DaemonParts {
  kernel?: Kernel;
  firewall: FirewallHooks;
  /** Where the daemon's own lines go (a line without its newline); stderr by default. */
  log?: (line: string) => void;
  /** Metrics, traces, the status page (main.ts makes it from the config and the environment). */
  telemetry?: Telemetry;
}

export class Daemon {
  readonly config: DaemonConfig;
  controller!: NetworkController;
  /** The cluster this host is in (--cluster). */
  cluster: Cluster | undefined;
  dns!: DnsServer;
  report: ReconcileReport | undefined;
  readonly #parts: DaemonParts;
  readonly #telemetry: Telemetry;
  #store: FileStore | undefined;
  #api: ApiServer | undefined;
  #sweep: NodeJS.Timeout | undefined;
  #docker: DockerSource | undefined;
  #closed = false;
  #xfrm: Xfrm | undefined;

  constructor(config: DaemonConfig, parts: DaemonParts) {
    this.config = config;
    this.#parts = parts;
    // Without one given: telemetry that observes nothing (no listener, no wrapper).
    this.#telemetry = parts.telemetry ?? new Telemetry({ env: {}, log: new Logger({ format: 'text', level: 'info' }) });
  }

  /** Creates the config's networks and services that do not exist yet (so a restart adds nothing). */
  async #declare(): Promise<void> {
    const c = this.controller;
    for (const spec of this.config.networks ?? []) {
      if (!c.listNetworks().some((n) => n.name === spec.name)) await c.createNetwork(spec);
    }
    for (const spec of this.config.services ?? []) {
      if (!c.listServices().some((s) => s.name === spec.name && s.network === spec.network)) {
        await c.createService(spec);
      }
    }
  }

  async start(): Promise<void> {
    const c = this.config;
    await checkLbDataplane(c.lbDataplane);
    configureSandboxPaths({ dockerNetnsDir: c.dockerNetnsDir });
    await mkdir(c.stateDir, { recursive: true, mode: 0o700 });
    // Forwarding between the bridges and out of the host, as Docker's daemon turns it on.
    writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
    writeFileSync('/proc/sys/net/ipv6/conf/all/forwarding', '1');
    this.#store = await FileStore.open(join(c.stateDir, 'state.json'));
    const ipam = new Ipam({ store: this.#store });
    await ipam.start();
    const t = this.#telemetry;
    t.wrapIpam(ipam);
    this.dns = new DnsServer({
      resolvConf: c.resolvConf,
      ...(c.dnsUpstreams ? { upstreams: c.dnsUpstreams } : {}),
      metrics: t.metrics,
    });
    await this.dns.start();
    const log = this.#parts.log ?? ((l: string) => process.stderr.write(`cnmd: ${l}\n`));
    const lb = new LbWiring({ mode: c.lbDataplane, log });
    const kernel = t.wrapKernel(this.#parts.kernel ?? new NetlinkKernel());
    const firewall = t.wrapFirewall(this.#parts.firewall);
    if (c.cluster) {
      this.cluster = new Cluster({
        hostId: c.hostId!,
        servers: c.cluster,
        graceMs: c.clusterGraceMs,
        store: this.#store,
        ipam,
        log,
        ...(c.advertiseAddr ? { advertiseAddr: c.advertiseAddr } : {}),
        ...(c.clusterCreds ? { creds: c.clusterCreds } : {}),
        ...(c.clusterTlsCa ? { tlsCa: c.clusterTlsCa } : {}),
      });
      await this.cluster.load();
    }
    this.controller = new NetworkController({
      store: this.#store,
      ipam,
      drivers: new Drivers(
        builtinDrivers({
          kernel,
          firewall,
          host: () => this.controller.host(),
          underlay: () => this.#underlay(),
          xfrm: async () => {
            this.#xfrm ??= Xfrm.open();
            return this.#xfrm;
          },
        }),
      ),
      kernel,
      firewall,
      dns: t.wrapDns(new DnsWiring({ server: this.dns, hostResolvConf: c.resolvConf })),
      lb: t.wrapLb(lb),
      log,
      ...(this.cluster ? { cluster: this.cluster } : {}),
    });
    lb.bind(this.controller);
    t.instrument(this.controller, this.cluster);
    // The config's networks name drivers and options that exist, before anything is made.
    for (const [i, spec] of (c.networks ?? []).entries()) {
      try {
        this.controller.drivers.check(spec);
      } catch (cause) {
        throw new SidecarError('SIDECAR_CONFIG_INVALID', `networks[${i}]: ${describeError(cause)}`, { cause });
      }
    }
    // The services come back one by one: their load balancers apply them once, all together.
    lb.hold();
    this.report = await this.controller.serial(async () => {
      try {
        return await reconcile(this.controller, log);
      } finally {
        await lb.release();
      }
    });
    // The cluster's view comes in the background: this host serves what it has meanwhile.
    this.cluster?.start(new ClusterApply(this.controller, this.cluster, log));
    await this.#declare();
    await t.serve({
      controller: this.controller,
      ipam,
      dns: this.dns,
      cluster: this.cluster,
      dataplanes: () => lb.dataplanes(),
    });
    this.#api = new ApiServer({
      controller: this.controller,
      socket: c.socket,
      ...(c.apiTcp ? { tcp: c.apiTcp } : {}),
      ...(c.apiToken ? { token: c.apiToken } : {}),
      health: () => ({ lb: { dataplane: c.lbDataplane, networks: lb.dataplanes() } }),
      ...(this.cluster ? { cluster: () => this.cluster!.status() } : {}),
    });
    await this.#api.start();
    if (c.dockerSocket) {
      this.#docker = new DockerSource({
        client: new DockerClient({ socket: c.dockerSocket }),
        controller: this.controller,
        log,
        createNetworks: c.dockerCreateNetworks ?? !c.networks?.length,
        maxNetworks: c.dockerMaxNetworks,
        ...(c.dockerScope ? { scope: c.dockerScope } : {}),
      });
      this.#docker.start();
    }
    if (c.sweepMs > 0) {
      this.#sweep = setInterval(() => void this.sweep().catch(this.controller.logged('sweep')), c.sweepMs);
      this.#sweep.unref();
    }
  }

  /** The link holding --advertise-addr in the daemon's namespace: the overlay's underlay. */
  async #underlay(): Promise<{ address: string; link: string; mtu: number } | undefined> {
    const address = this.config.advertiseAddr;
    if (!address) return undefined;
    const host = await this.controller.host();
    const held = (await host.addresses()).find((a) => a.cidr.startsWith(`${address}/`));
    const link = held && (await host.links()).find((l) => l.index === held.link);
    return link ? { address, link: link.name, mtu: link.mtu } : undefined;
  }

  /** Cleans up endpoints whose sandbox is gone (the container died without a detach). */
  async sweep(): Promise<number> {
    let n = 0;
    await this.controller.serial(async () => {
      for (const ep of this.controller.endpoints.all()) {
        if (ep.state === 'ready' && sandboxKey(ep.sandbox, { host: ep.mode === 'host' }) !== ep.sandboxKey) {
          await this.controller.destroyEndpoint(ep);
          n++;
        }
      }
    });
    return n;
  }

  /** Stops serving; the kernel state stays, so containers keep their network until a restart. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    await this.#docker?.close();
    await this.#api?.close();
    await this.#telemetry.close();
    await this.cluster?.close();
    await this.controller?.close();
    await this.controller?.dns.close();
    await this.controller?.lb?.close();
    await this.dns?.close();
    await this.#parts.firewall.close();
    await this.#store?.close();
    this.#xfrm?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
