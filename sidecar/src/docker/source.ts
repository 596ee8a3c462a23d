// Sandboxes from the Docker engine: labelled containers (`cnmd.networks`, in network mode none)
// are attached when they start and detached when they die. On connecting it reconciles with the
// running containers; when the stream breaks or the engine restarts it reconnects with backoff
// (100 ms doubling to 5 s) and reconciles again. Work on one container is serialised (its own
// queue, behind the controller's), and every step looks at the container as it is now, so an
// event seen twice or a reconcile racing an event attaches nothing twice.

import { describeError, isSidecarError, SidecarError } from '../errors.js';
import type { NetworkController } from '../network/controller.js';
import { parseNetworkSpec } from '../network/parse.js';
import type { NetworkRecord } from '../network/records.js';
import type { ServiceSpec } from '../network/spec.js';
import { sandboxKey } from '../sandbox/path.js';
import type { DockerClient } from './client.js';
import type { DockerEvent, EventStream } from './events.js';
import { containerOf, type DockerContainer } from './inspect.js';
import { type DockerIntent, NETWORKS_LABEL, parseLabels, SCOPE_LABEL } from './labels.js';
import { writeResolvConf } from './resolv-conf.js';

export interface DockerSourceOptions {
  client: DockerClient;
  controller: NetworkController;
  /** One line, without a newline: what was left alone and why, connections and outages. */
  log: (line: string) => void;
  /**
   * Several cnmd daemons on one engine: with a scope, only containers labelled cnmd.scope=SCOPE;
   * without, only containers with no cnmd.scope.
   */
  scope?: string;
  /** Whether a network a label names is created when missing (default true). */
  createNetworks?: boolean;
  /** At most this many networks made from labels exist at once (default 16): each takes a pool. */
  maxNetworks?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface DockerReconcileReport {
  /** Labelled containers running, and endpoints of containers gone or stopped that were removed. */
  running: number;
  detached: number;
}

export class DockerSource {
  readonly #o: Required<Omit<DockerSourceOptions, 'scope'>>;
  readonly #scope: string | undefined;
  readonly #labels: string[];
  readonly #queues = new Map<string, Promise<void>>();
  /** Containers already logged as left alone: one line each, not one per reconcile. */
  readonly #warned = new Set<string>();
  #stream: EventStream | undefined;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(o: DockerSourceOptions) {
    this.#o = { minBackoffMs: 100, maxBackoffMs: 5000, createNetworks: true, maxNetworks: 16, ...o };
    this.#scope = o.scope;
    // The engine filters by scope when there is one (labels AND together).
    this.#labels = [NETWORKS_LABEL, ...(o.scope ? [`${SCOPE_LABEL}=${o.scope}`] : [])];
  }

  /** Connects in the background: the daemon serves whether or not the engine is up. */
  start(): void {
    this.#loop ??= this.#run();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stream?.close();
    this.#wake?.();
    await this.#loop;
    await Promise.all(this.#queues.values());
    await this.#o.client.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #run(): Promise<void> {
    const { client, log } = this.#o;
    let backoff = this.#o.minBackoffMs;
    let down = false;
    while (!this.#closed) {
      try {
        const version = await client.negotiate();
        // Subscribe first, then list: what changes meanwhile arrives as an event.
        const stream = await client.events({
          type: ['container'],
          event: ['start', 'die', 'destroy'],
          label: this.#labels,
        });
        this.#stream = stream;
        if (this.#closed) break;
        const r = await this.reconcile();
        log(
          `docker: following ${client.socket} (API ${version}); ${r.running} labelled container(s) running, ` +
            `${r.detached} endpoint(s) of gone containers removed`,
        );
        down = false;
        backoff = this.#o.minBackoffMs;
        for await (const ev of stream) this.#onEvent(ev);
        if (!this.#closed) log('docker: the event stream ended; reconnecting');
      } catch (err) {
        if (this.#closed) break;
        if (!down) log(`docker: ${(err as Error).message}; retrying (backoff up to ${this.#o.maxBackoffMs} ms)`);
        down = true;
      } finally {
        this.#stream?.close();
        this.#stream = undefined;
      }
      if (this.#closed) break;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, backoff).unref();
      });
      backoff = Math.min(backoff * 2, this.#o.maxBackoffMs);
    }
  }

  #onEvent(ev: DockerEvent): void {
    const id = ev.Actor.ID;
    if (ev.Action === 'start') this.#enqueue(id, () => this.sync(id));
    // Stop and kill end in die: the container leaves DNS and the LB (drained) at once.
    else if (ev.Action === 'die') this.#enqueue(id, () => this.detach(id));
    else if (ev.Action === 'destroy') {
      this.#warned.delete(id);
      this.#enqueue(id, () => this.detach(id));
    }
  }

  /** Runs `fn` after whatever is queued for the container; errors are logged, never thrown. */
  #enqueue(id: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.#queues.get(id) ?? Promise.resolve();
    const next = prev
      .then(fn)
      .catch((err) => this.#o.log(`docker: container ${id.slice(0, 12)}: ${describeError(err)}`))
      .finally(() => {
        if (this.#queues.get(id) === next) this.#queues.delete(id);
      });
    this.#queues.set(id, next);
    return next;
  }

  /** Attaches every running labelled container that is missing; detaches what belongs to none. */
  async reconcile(): Promise<DockerReconcileReport> {
    const c = this.#o.controller;
    const running = await this.#o.client.containers({ label: this.#labels, status: ['running'] });
    const ids = new Set(running.map((r) => r.Id));
    const gone = new Set(
      c.endpoints
        .all()
        .filter((e) => e.origin === 'docker' && !ids.has(e.containerId))
        .map((e) => e.containerId),
    );
    const work = [
      ...[...ids].map((id) => this.#enqueue(id, () => this.sync(id))),
      ...[...gone].map((id) => this.#enqueue(id, () => this.detach(id))),
    ];
    await Promise.all(work);
    return { running: ids.size, detached: gone.size };
  }

  /** Makes the container's endpoints match what it is now: attached when running and labelled. */
  async sync(id: string): Promise<void> {
    const raw = await this.#o.client.inspect(id);
    const ctr = raw === undefined ? undefined : containerOf(raw);
    if (!ctr?.running) return this.detach(id);
    let intent: DockerIntent | undefined;
    try {
      intent = parseLabels(ctr.labels);
    } catch (err) {
      return this.#leaveAlone(ctr, (err as Error).message);
    }
    if (!intent) return;
    if (intent.scope !== this.#scope) {
      return this.#leaveAlone(
        ctr,
        `it is in scope ${intent.scope ?? '(none)'}, this cnmd in ${this.#scope ?? '(none)'}`,
      );
    }
    if (ctr.networkMode !== 'none') {
      return this.#leaveAlone(ctr, `network mode ${ctr.networkMode}: labelled containers run with --network none`);
    }
    const key = sandboxKey(ctr.sandbox);
    if (!key) return this.detach(id); // it died meanwhile: its die event follows
    // Endpoints in an older sandbox of the container (it restarted while cnmd was away) go first.
    if (this.#endpoints(id).some((e) => e.sandboxKey !== key)) await this.detach(id);
    // Every network the label names exists, or may be made, before anything is: a container
    // refused for one network leaves nothing behind (no network made for it either).
    try {
      this.#mayCreate(intent.networks.map((w) => w.name));
    } catch (err) {
      return this.#leaveAlone(ctr, describeError(err));
    }
    try {
      for (const wish of intent.networks) {
        const net = await this.#network(wish.name);
        if (this.#endpoints(id).some((e) => e.network === net.id)) continue;
        if (intent.service) await this.#service(intent, net);
        await this.#o.controller.attach({
          sandbox: ctr.sandbox,
          network: net.spec.name,
          name: ctr.name,
          aliases: intent.aliases,
          publish: [],
          containerId: id,
          origin: 'docker',
          ...(ctr.hostname ? { hostname: ctr.hostname } : {}),
          ...(ctr.dns ? { dns: ctr.dns } : {}),
          ...(wish.ip ? { ip: wish.ip } : {}),
          ...(wish.ip6 ? { ip6: wish.ip6 } : {}),
          ...(intent.service ? { service: intent.service, weight: intent.weight ?? 1 } : {}),
        });
      }
      // The last step: a command waiting for 127.0.0.11 in its resolv.conf finds the network ready.
      await writeResolvConf(ctr.resolvConf);
    } catch (err) {
      // Half attached is worse than not at all: undo, say why once.
      await this.detach(id);
      if (sandboxKey(ctr.sandbox) !== key) return; // it died under us
      throw err;
    }
  }

  /** Removes every endpoint of the container (its DNS names at once; its LB backends drained). */
  async detach(id: string): Promise<void> {
    const c = this.#o.controller;
    await c.serial(async () => {
      for (const ep of this.#endpoints(id)) await c.destroyEndpoint(ep);
    });
  }

  #endpoints(id: string) {
    return this.#o.controller.endpoints.all().filter((e) => e.origin === 'docker' && e.containerId === id);
  }

  #leaveAlone(ctr: DockerContainer, why: string): void {
    if (this.#warned.has(ctr.id)) return;
    if (this.#warned.size > 10_000) this.#warned.clear();
    this.#warned.add(ctr.id);
    this.#o.log(`docker: container ${ctr.name} (${ctr.id.slice(0, 12)}) left alone: ${why}`);
  }

  /**
   * Throws unless the networks missing among `names` may be made from labels: that is not
   * turned off, and no more than `maxNetworks` made from labels would exist. One container's
   * label must not be able to take every local pool.
   */
  #mayCreate(names: string[]): void {
    const c = this.#o.controller;
    const missing = names.filter((n) => !c.networks.all().some((r) => r.spec.name === n));
    if (missing.length === 0) return;
    if (!this.#o.createNetworks) {
      throw new SidecarError(
        'SIDECAR_NETWORK_NOT_FOUND',
        `no network ${missing.join(', ')}, and networks are not made from labels here (dockerCreateNetworks)`,
      );
    }
    const made = c.networks.all().filter((n) => n.origin === 'docker').length;
    if (made + missing.length > this.#o.maxNetworks) {
      throw new SidecarError(
        'SIDECAR_DOCKER_NETWORK_LIMIT',
        `no network ${missing.join(', ')}, and ${made} of at most ${this.#o.maxNetworks} networks made from labels exist (dockerMaxNetworks)`,
      );
    }
  }

  /** The network by name, created with defaults on first use (#mayCreate said it may be). */
  async #network(name: string): Promise<NetworkRecord> {
    const c = this.#o.controller;
    try {
      return c.network(name);
    } catch (err) {
      if (!isSidecarError(err, 'SIDECAR_NETWORK_NOT_FOUND')) throw err;
    }
    await c.createNetwork(parseNetworkSpec({ name }), { origin: 'docker' }).catch((err) => {
      if (!isSidecarError(err, 'SIDECAR_NETWORK_EXISTS')) throw err;
    });
    return c.network(name);
  }

  /** The container's service on the network, created on first use (vip, rr, the label's ports). */
  async #service(intent: DockerIntent, net: NetworkRecord): Promise<void> {
    const c = this.#o.controller;
    const name = intent.service!;
    if (c.services.records.all().some((s) => s.spec.name === name && s.network === net.id)) return;
    const spec: ServiceSpec = { name, network: net.spec.name, ports: intent.ports, scheduler: 'rr', mode: 'vip' };
    if (intent.health) spec.health = intent.health;
    await c.createService(spec).catch((err) => {
      if (!isSidecarError(err, 'SIDECAR_SERVICE_EXISTS')) throw err;
    });
  }
}
