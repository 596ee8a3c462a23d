// The cluster's buckets in JetStream KV over a NATS connection (nats.js v3). The connection
// retries for ever (a daemon outlives any NATS outage: the client's default gives up after ten
// attempts), and while it is down every call fails at once with SIDECAR_CLUSTER_UNAVAILABLE
// rather than after a JetStream timeout. Buckets are made on first use, replicated on three
// servers where the NATS cluster has them, else on one.
import { readFile } from 'node:fs/promises';
import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { type KV, Kvm, KvWatchInclude } from '@nats-io/kv';
import { credsAuthenticator, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { SidecarError } from '../errors.js';
import { BUCKET_NAMES, type Bucket, type Buckets, type KvChange, type KvEntry, type KvWatch } from './kv.js';

export interface NatsOptions {
  /** nats://host:port of one or more servers of the NATS cluster. */
  servers: string[];
  /** The client's name on the servers: the host id. */
  name: string;
  /** A NATS credentials file (JWT and nkey seed). */
  creds?: string;
  /** A CA bundle to check the servers' TLS certificates with (turns TLS on). */
  tlsCa?: string;
  /** Told of disconnects and reconnects. */
  onStatus?: (connected: boolean, server: string) => void;
}

/** JetStream's "wrong last sequence": the compare-and-set's condition did not hold. */
const WRONG_LAST_SEQUENCE = 10071;
/** A write's reply may take this long (a write that timed out may still have landed: its retry
 * then reads as a conflict, so writes are given time). */
const OP_TIMEOUT_MS = 2000;
/** A read or a watch asks again after this: while the servers elect leaders a request gets no
 * reply at all, and a short wait notices the new leader soon after it is there. */
const READ_TIMEOUT_MS = 400;
/** How long a call is tried again while the servers elect new stream leaders. */
const RETRY_MS = 12_000;

export class NatsKv {
  readonly buckets: Buckets;
  readonly #nc: NatsConnection;
  #connected = true;

  private constructor(nc: NatsConnection, kvs: Record<keyof Buckets, KV>, reads: Record<keyof Buckets, KV>) {
    this.#nc = nc;
    const wrap = (k: keyof Buckets) => new NatsBucket(kvs[k], reads[k], BUCKET_NAMES[k], () => this.#connected);
    this.buckets = {
      networks: wrap('networks'),
      endpoints: wrap('endpoints'),
      services: wrap('services'),
      hosts: wrap('hosts'),
      ipam: wrap('ipam'),
      keys: wrap('keys'),
    };
  }

  /** Connects (waiting as long as it takes for a first server) and opens or makes the buckets. */
  static async connect(o: NatsOptions): Promise<NatsKv> {
    const nc = await connect({
      servers: o.servers,
      name: o.name,
      maxReconnectAttempts: -1,
      waitOnFirstConnect: true,
      reconnectTimeWait: 250,
      pingInterval: 5000,
      ...(o.creds ? { authenticator: credsAuthenticator(await readFile(o.creds)) } : {}),
      ...(o.tlsCa ? { tls: { caFile: o.tlsCa } } : {}),
    });
    try {
      const js = jetstream(nc, { timeout: OP_TIMEOUT_MS });
      const fast = new Kvm(jetstream(nc, { timeout: READ_TIMEOUT_MS }));
      const kvs = {} as Record<keyof Buckets, KV>;
      const reads = {} as Record<keyof Buckets, KV>;
      for (const k of Object.keys(BUCKET_NAMES) as (keyof Buckets)[]) {
        kvs[k] = await openBucket(js, BUCKET_NAMES[k]);
        reads[k] = await fast.open(BUCKET_NAMES[k]);
      }
      const kv = new NatsKv(nc, kvs, reads);
      kv.#follow(o.onStatus);
      return kv;
    } catch (err) {
      await nc.close().catch(() => {});
      throw err;
    }
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** The server this connection is on now. */
  get server(): string {
    return this.#nc.getServer();
  }

  async close(): Promise<void> {
    if (!this.#nc.isClosed()) await this.#nc.close();
  }

  async #follow(onStatus: NatsOptions['onStatus']): Promise<void> {
    for await (const s of this.#nc.status()) {
      if (s.type === 'disconnect') {
        this.#connected = false;
        onStatus?.(false, s.server);
      } else if (s.type === 'reconnect') {
        this.#connected = true;
        onStatus?.(true, s.server);
      }
    }
  }
}

/** Opens a bucket, or makes it: three replicas where the servers allow, else one. */
async function openBucket(js: JetStreamClient, name: string): Promise<KV> {
  const kvm = new Kvm(js);
  try {
    // open() trusts the name; status() asks the servers whether the bucket's stream exists.
    const kv = await kvm.open(name);
    await kv.status();
    return kv;
  } catch {
    // not there yet: made below
  }
  try {
    return await kvm.create(name, { replicas: 3, history: 1 });
  } catch {
    return await kvm.create(name, { replicas: 1, history: 1 });
  }
}

class NatsBucket implements Bucket {
  readonly name: string;
  readonly #kv: KV;
  /** The same bucket, for reads and watches: READ_TIMEOUT_MS. */
  readonly #reads: KV;
  readonly #up: () => boolean;

  constructor(kv: KV, reads: KV, name: string, up: () => boolean) {
    this.#kv = kv;
    this.#reads = reads;
    this.name = name;
    this.#up = up;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    const e = await this.#call(() => this.#reads.get(key));
    return e && e.operation === 'PUT' ? { key, value: e.string(), revision: e.revision } : undefined;
  }

  create(key: string, value: string): Promise<number | 'conflict'> {
    return this.#cas(() => this.#kv.create(key, value));
  }

  update(key: string, value: string, revision: number): Promise<number | 'conflict'> {
    return this.#cas(() => this.#kv.update(key, value, revision));
  }

  async delete(key: string, revision?: number): Promise<'ok' | 'conflict'> {
    const r = await this.#cas(async () => {
      await this.#kv.delete(key, revision === undefined ? {} : { previousSeq: revision });
      return 0;
    });
    return r === 'conflict' ? 'conflict' : 'ok';
  }

  async watch(onChange: (c: KvChange) => void, onSnapshot: () => void, onEnd?: () => void): Promise<KvWatch> {
    const it = await this.#call(() => this.#reads.watch({ include: KvWatchInclude.LastValue }));
    // The snapshot is the values pending when the watch's consumer was made (nats.js marks the
    // last of them isUpdate): with none, it is over at once. That count is the consumer's info
    // as fetched when it was made (nats.js keeps the consumer as the iterator's _data).
    const consumer = (it as unknown as { _data: { info(cached: boolean): Promise<{ num_pending: number }> } })._data;
    let inSnapshot = (await consumer.info(true)).num_pending > 0;
    if (!inSnapshot) onSnapshot();
    let stopped = false;
    void (async () => {
      for await (const e of it) {
        onChange({ key: e.key, value: e.operation === 'PUT' ? e.string() : undefined, revision: e.revision });
        if (inSnapshot && e.isUpdate) {
          inSnapshot = false;
          onSnapshot();
        }
      }
    })()
      .catch(() => {})
      .finally(() => {
        if (!stopped) onEnd?.(); // its consumer went (a server died): the owner watches again
      });
    return {
      stop: () => {
        stopped = true;
        it.stop();
      },
    };
  }

  async #cas(fn: () => Promise<number>): Promise<number | 'conflict'> {
    try {
      return await this.#call(fn);
    } catch (err) {
      if ((err as { code?: unknown }).code === WRONG_LAST_SEQUENCE) return 'conflict';
      throw err;
    }
  }

  /**
   * Runs a JetStream call. While the connection is up, a failure is tried again for a while: a
   * NATS server that died takes its streams' leadership with it, and until the others elect a
   * new leader (5-7 s on nats-server 2.9) every call times out or hears "jetstream not enabled".
   * With the connection down, it fails at once: the caller's clear error (an outage).
   */
  async #call<T>(fn: () => Promise<T>): Promise<T> {
    const end = performance.now() + RETRY_MS;
    for (;;) {
      if (!this.#up()) throw new SidecarError('SIDECAR_CLUSTER_UNAVAILABLE', `${this.name}: NATS is not connected`);
      try {
        return await fn();
      } catch (cause) {
        if ((cause as { code?: unknown }).code === WRONG_LAST_SEQUENCE) throw cause;
        if (performance.now() > end || !this.#up()) {
          throw new SidecarError('SIDECAR_CLUSTER_UNAVAILABLE', `${this.name}: ${(cause as Error).message}`, { cause });
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}
