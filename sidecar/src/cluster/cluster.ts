import type { Allocation } from '@cnmd/ipam';
import { SidecarError } from '../errors.js';
import type { ClusterHooks } from '../network/hooks.js';
import type { EndpointRecord, NetworkRecord, RemoteEndpoint, ServiceRecord } from '../network/records.js';
import type { NetworkSpec } from '../network/spec.js';
import { Blocks } from './blocks.js';
import { Claims } from './claims.js';
import { GlobalRecords } from './globals.js';
import { KeyRing, type KeysStatus, type NetworkKeys } from './keys.js';
import { BUCKET_NAMES, type Bucket, type Buckets, type KvWatch } from './kv.js';
import { Liveness } from './liveness.js';
import { NatsKv } from './nats.js';
import { OwnRecords, putBeat } from './own.js';
import * as R from './records.js';
import type { ClusterOptions, ClusterSink, ClusterStatus } from './types.js';
import { BucketView, type Decoder } from './view.js';

export type { ClusterOptions, ClusterSink, ClusterStatus };

export class Cluster implements ClusterHooks {
  readonly hostId: string;
  readonly blocks: Blocks;
  readonly networks: BucketView<R.ClusterNetwork>;
  readonly endpoints: BucketView<R.ClusterEndpoint>;
  readonly services: BucketView<R.ClusterService>;
  readonly hosts: BucketView<R.ClusterHost>;
  readonly claims: BucketView<R.ClusterClaim>;
  readonly keys: BucketView<R.ClusterKeys | R.ClusterKeysAck>;
  readonly #keyRing: KeyRing;
  readonly #o: ClusterOptions;
  readonly #claims: Claims;
  readonly #globals: GlobalRecords;
  #sink: ClusterSink | undefined;
  #kv: Buckets | undefined;
  #nats: NatsKv | undefined;
  #watches: KvWatch[] = [];
  readonly #liveness: Liveness;
  readonly #own: OwnRecords;
  #synced = false;
  #resyncing: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #rewatch: NodeJS.Timeout | undefined;
  #ticking = false;
  /** When this host last heard its own heartbeat through the watch, and whether it is deaf. */
  #echo: number | undefined;
  #deaf = false;
  /** The oldest beat put since the last echo (when the watch should have told it). */
  #lastBeat: number | undefined;
  #closed = false;
  readonly #started = Date.now();

  constructor(o: ClusterOptions) {
    this.#o = o;
    this.hostId = o.hostId;
    this.#own = new OwnRecords(o.hostId, o.advertiseAddr);
    const refused = (bucket: string) => (key: string, why: string) =>
      o.log(`cluster: ignored ${bucket} ${key}: ${why}`);
    const view = <T>(bucket: string, decode: Decoder<T>, change: (k: string, n?: T, o?: T) => void) =>
      new BucketView<T>(decode, { change, refused: refused(bucket) });
    this.networks = view(BUCKET_NAMES.networks, R.decodeNetwork, (_, n, old) => this.#sink?.network(n, old));
    this.services = view(BUCKET_NAMES.services, R.decodeService, (_, n, old) => this.#sink?.service(n, old));
    this.endpoints = view(BUCKET_NAMES.endpoints, R.decodeEndpoint, (_, n, old) => this.#endpointChanged(n, old));
    this.#liveness = new Liveness(o.hostId, o.graceMs, (host, alive) => this.#hostChanged(host, alive));
    this.hosts = view(BUCKET_NAMES.hosts, R.decodeHost, (key, n) => {
      if (key === o.hostId && n) {
        this.#echo = performance.now();
        this.#lastBeat = undefined;
      }
      this.#liveness.heard(key, n !== undefined);
    });
    this.claims = view(BUCKET_NAMES.ipam, R.decodeClaim, () => {});
    this.keys = view(BUCKET_NAMES.keys, R.decodeKeys, (key) => {
      this.#keyRing.changed();
      if (key.startsWith('net.')) this.#sink?.keys?.(key.slice(4));
    });
    this.#keyRing = new KeyRing({
      hostId: o.hostId,
      view: this.keys,
      bucket: () => this.#bucket('keys'),
      alive: (host) => host === this.hostId || this.#liveness.alive(host),
      addr: (host) => this.hosts.get(host)?.addr,
      log: o.log,
    });
    this.blocks = new Blocks(o.store, {
      hostId: o.hostId,
      ipam: o.ipam,
      bucket: () => this.#bucket('ipam'),
      holder: (network, index) => this.claims.get(R.blockKey(network, index))?.host,
      log: o.log,
    });
    this.#globals = new GlobalRecords({
      hostId: o.hostId,
      networks: this.networks,
      endpoints: this.endpoints,
      services: this.services,
      claims: this.claims,
      subnet: (given) => this.#claims.subnet(given),
      vni: (given) => this.#claims.vni(given),
      port: (given) => this.#claims.port(given),
      keys: this.#keyRing,
      bucket: (k) => this.#bucket(k),
    });
    this.#claims = new Claims({
      hostId: o.hostId,
      claims: this.claims,
      networks: this.networks,
      blocks: this.blocks,
      bucket: () => this.#bucket('ipam'),
      log: o.log,
    });
  }

  /** Loads this host's blocks from its store (before the controller's reconcile). */
  async load(): Promise<void> {
    await this.blocks.records.load();
  }

  /** Starts following the cluster, in the background: the daemon serves whether NATS is up or not. */
  start(sink: ClusterSink): void {
    this.#sink = sink;
    const every = Math.max(50, Math.floor(this.#o.graceMs / 4));
    this.#timer = setInterval(() => void this.#tick(), every);
    this.#timer.unref();
    if (this.#o.buckets) {
      this.#kv = this.#o.buckets;
      void this.resync();
      return;
    }
    NatsKv.connect({
      servers: this.#o.servers,
      name: this.hostId,
      ...(this.#o.creds ? { creds: this.#o.creds } : {}),
      ...(this.#o.tlsCa ? { tlsCa: this.#o.tlsCa } : {}),
      onStatus: (up, server) => {
        this.#o.log(`cluster: ${up ? 'reconnected to' : 'lost'} ${server}`);
        if (up) void this.resync();
      },
    }).then(
      (nats) => {
        if (this.#closed) return void nats.close();
        this.#nats = nats;
        this.#kv = nats.buckets;
        this.#o.log(`cluster: connected to ${nats.server} as ${this.hostId}`);
        void this.resync();
      },
      (err) => this.#o.log(`cluster: cannot connect: ${(err as Error).message}`),
    );
  }

  get connected(): boolean {
    return this.#kv !== undefined && (this.#nats?.connected ?? true);
  }

  /**
   * Watches every bucket again and applies what differs from the view; puts this host's own
   * records back where they differ; beats. Runs again if asked while running.
   */
  resync(): Promise<void> {
    if (this.#resyncing) {
      this.#again = true;
      return this.#resyncing;
    }
    this.#resyncing = (async () => {
      do {
        this.#again = false;
        try {
          await this.#resyncOnce();
        } catch (err) {
          this.#o.log(`cluster: resync: ${(err as Error).message}`);
        }
      } while (this.#again && !this.#closed);
      this.#resyncing = undefined;
    })();
    return this.#resyncing;
  }

  async #resyncOnce(): Promise<void> {
    const kv = this.#kv;
    if (!kv) return;
    const t0 = performance.now();
    for (const w of this.#watches.splice(0)) w.stop();
    const all = [
      this.networks,
      this.hosts,
      this.claims,
      this.keys,
      this.services,
      this.endpoints,
    ] as BucketView<unknown>[];
    const before = all.reduce((n, v) => n + v.changes, 0);
    // All at once: an endpoint that comes before its network waits in the view (apply.ts), and
    // one bucket whose stream has no leader yet does not hold the others back.
    await Promise.all([
      this.#watch(kv.networks, this.networks),
      this.#watch(kv.hosts, this.hosts),
      this.#watch(kv.ipam, this.claims),
      this.#watch(kv.keys, this.keys),
      this.#watch(kv.services, this.services),
      this.#watch(kv.endpoints, this.endpoints),
    ]);
    this.#liveness.forgive();
    for (const h of this.hosts.values()) this.#liveness.known(h.host);
    this.#synced = true;
    const changed = all.reduce((n, v) => n + v.changes, 0) - before;
    this.#o.log(
      `cluster: in step in ${Math.round(performance.now() - t0)} ms: ${this.networks.size} network(s), ` +
        `${this.endpoints.size} endpoint(s), ${this.services.size} service(s), ${this.hosts.size} host(s); ` +
        `${changed} change(s)`,
    );
    this.#sink?.synced?.();
    await this.#beat();
    await this.#claims.syncBlocks();
    await this.#publishOwn();
  }

  #watch<T>(bucket: Bucket, view: BucketView<T>): Promise<void> {
    return new Promise((resolve, reject) => {
      view.beginSnapshot();
      bucket
        .watch(
          (c) => view.apply(c),
          () => {
            view.endSnapshot();
            resolve();
          },
          () => this.#watchEnded(bucket.name),
        )
        .then((w) => this.#watches.push(w), reject);
    });
  }

  /** A watch ended by itself: watch everything again (soon, so a dying server is not hammered). */
  #watchEnded(bucket: string): void {
    if (this.#closed || this.#rewatch) return;
    this.#o.log(`cluster: the watch of ${bucket} ended; watching again`);
    this.#rewatch = setTimeout(() => {
      this.#rewatch = undefined;
      void this.resync();
    }, 250);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#rewatch);
    for (const w of this.#watches.splice(0)) w.stop();
    await this.#own.settled();
    await this.#nats?.close();
  }

  status(): ClusterStatus {
    return {
      host: this.hostId,
      connected: this.connected,
      ...(this.#nats ? { server: this.#nats.server } : {}),
      servers: this.#o.servers,
      hosts: this.#liveness.describe(this.hosts.values()),
    };
  }

  // ---- ClusterHooks: what the controller asks ----

  createNetwork(spec: NetworkSpec, needs: { gateway: boolean; vni: boolean; encrypted?: boolean }) {
    return this.#globals.createNetwork(spec, needs);
  }

  networkKeys(net: NetworkRecord): NetworkKeys | undefined {
    return this.#keyRing.get(net.id);
  }

  /** This host now works with these keys of the network: the rotation's driver learns it. With
   * `lost`, its states were made from nothing (a reboot): new keys are asked for. */
  async ackKeys(net: NetworkRecord, keys: NetworkKeys, lost = false): Promise<void> {
    const before = this.#keyRing.acked(net.id); // held them before this start
    await this.#keyRing.ack(net.id, keys);
    if (lost && before) await this.#keyRing.lost(net.id);
  }

  rotateKeys(net: NetworkRecord): Promise<{ tag: number; ms: number }> {
    this.#bucket('keys'); // SIDECAR_CLUSTER_UNAVAILABLE now, not after a wait
    return this.#keyRing.rotate(net.id);
  }

  keysStatus(net: NetworkRecord): KeysStatus | undefined {
    return this.#keyRing.get(net.id) && this.#keyRing.status(net.id);
  }

  removeNetwork(net: NetworkRecord): Promise<void> {
    return this.#globals.removeNetwork(net);
  }

  createService(net: NetworkRecord, rec: ServiceRecord): Promise<void> {
    return this.#globals.createService(net, rec);
  }

  removeService(net: NetworkRecord, rec: ServiceRecord): Promise<void> {
    return this.#globals.removeService(net, rec);
  }

  requestAddress(net: NetworkRecord, req: { address?: string; mac?: boolean | string }): Promise<Allocation> {
    return this.blocks.request(net, req);
  }

  releaseAddress(net: NetworkRecord, address: string): Promise<void> {
    return this.blocks.release(net, address);
  }

  publish(_net: NetworkRecord, ep: EndpointRecord, on: boolean): void {
    // Put back by the next resync or tick when not connected now.
    this.#own.publish(this.connected ? this.#kv!.endpoints : undefined, ep, on);
  }

  requestMark(): Promise<number> {
    return this.#claims.mark();
  }

  async releaseMark(mark: number): Promise<void> {
    await this.#bucket('ipam').delete(R.markKey(mark));
  }

  remoteEndpoints(net: NetworkRecord): RemoteEndpoint[] {
    return this.endpoints.values().filter((e) => e.network === net.id && this.#live(e.host));
  }

  // ---- inside ----

  #live(host: string): boolean {
    return host !== this.hostId && this.#liveness.alive(host);
  }

  #endpointChanged(now: R.ClusterEndpoint | undefined, old: R.ClusterEndpoint | undefined): void {
    const host = (now ?? old)!.host;
    if (host === this.hostId) return;
    this.#liveness.known(host); // an endpoint's host that never beats is gone after the grace
    if (this.#live(host)) this.#sink?.endpoint(now, old);
  }

  /** A host came back or went: its endpoints restored or withdrawn; gone, its keys rotated. */
  #hostChanged(host: string, alive: boolean): void {
    this.#o.log(`cluster: host ${host} is ${alive ? 'back' : 'gone'}`);
    for (const e of this.endpoints.values()) {
      if (e.host === host) this.#sink?.endpoint(alive ? e : undefined, alive ? undefined : e);
    }
    if (alive) return;
    void this.#keyRing.gone(host); // a rotation; and its states go now (ipsec.ts keeps live peers')
    for (const [key] of this.keys.entries()) if (key.startsWith('net.')) this.#sink?.keys?.(key.slice(4));
  }

  /**
   * Beats, judges the other hosts, puts back what failed to go out. This host's own heartbeat
   * coming back through its watch says the watch hears: a beat put a while ago and not heard
   * back is a stalled watch (a server died under its consumer), watched again at once; and
   * while it does not hear, nobody is judged (a deaf host would take every other for gone).
   */
  async #tick(): Promise<void> {
    if (!this.connected || !this.#synced || this.#resyncing || this.#ticking) return;
    this.#ticking = true;
    try {
      const put = await this.#beat();
      const now = performance.now();
      const hearing = this.#echo !== undefined && now - this.#echo < this.#o.graceMs / 2;
      if (hearing) {
        if (this.#deaf) this.#liveness.forgive();
        this.#deaf = false;
        this.#liveness.check();
        void this.#keyRing.drive();
      } else {
        this.#deaf = true;
        if (put !== undefined && now - put > 1000) this.#watchEnded('cnmd_hosts (stalled)');
      }
      if (this.#own.dirty) await this.#publishOwn().catch(() => {});
    } finally {
      this.#ticking = false;
    }
  }

  async #publishOwn(): Promise<void> {
    if (this.#kv && this.#sink) await this.#own.putAll(this.#kv.endpoints, this.endpoints, this.#sink.own());
  }

  /** Puts this host's heartbeat; when it went in (performance.now()), or undefined. */
  async #beat(): Promise<number | undefined> {
    try {
      await putBeat(this.#bucket('hosts'), this.hostId, this.#o.advertiseAddr, this.#started);
      this.#lastBeat ??= performance.now();
      return this.#lastBeat;
    } catch {
      return undefined;
    }
  }

  #bucket(k: keyof Buckets): Bucket {
    if (!this.#kv || !this.connected) {
      throw new SidecarError('SIDECAR_CLUSTER_UNAVAILABLE', 'the cluster (NATS) cannot be reached now');
    }
    return this.#kv[k];
  }
}
