// The keys of encrypted overlay networks, kept in the cluster's `cnmd_keys` bucket: per network
// its keys (records.ts ClusterKeys), and per host what it holds of them (ClusterKeysAck). A
// rotation is three writes, each made once every live host that holds the keys has acknowledged
// the one before, as Docker's key rotation goes: a new key is added (each host installs the
// states that receive with it), it becomes primary (each host moves its policies: it sends with
// it), the old key goes (its states go). So no host sends with a key another cannot receive with
// yet, and no connection drops. The first live host (by id) of those that hold the keys drives
// the rotations; each write is a compare-and-set, so a second driver (a view behind) is harmless.
// A host that does not answer within ACK_WAIT_MS is waited for no longer, and said so.
import { randomBytes } from 'node:crypto';
import { SidecarError } from '../errors.js';
import type { NetworkKeys } from '../network/driver.js';
import type { KeysStatus } from '../network/spec.js';
import type { Bucket } from './kv.js';
import * as R from './records.js';
import type { BucketView } from './view.js';

/** How long a rotation step waits for a live host's acknowledgement before going on. */
export const ACK_WAIT_MS = 30_000;

export type { KeysStatus, NetworkKeys };

export interface KeysContext {
  hostId: string;
  view: BucketView<R.ClusterKeys | R.ClusterKeysAck>;
  /** The bucket; SIDECAR_CLUSTER_UNAVAILABLE while NATS is away. */
  bucket(): Bucket;
  /** Whether a host is alive (this host is). */
  alive(host: string): boolean;
  /** A host's underlay address, from its heartbeat. */
  addr?(host: string): string | undefined;
  log(line: string): void;
}

const isKeys = (v: R.ClusterKeys | R.ClusterKeysAck | undefined): v is R.ClusterKeys => v !== undefined && 'keys' in v;

export class KeyRing {
  readonly #c: KeysContext;
  #driving = false;
  #again = false;
  readonly #waiters = new Set<() => void>();

  constructor(c: KeysContext) {
    this.#c = c;
  }

  /** The keys of a new encrypted network, before its record is put. */
  async create(network: string, everyMs: number): Promise<void> {
    const now = Date.now();
    const rec: R.ClusterKeys = {
      v: 1,
      network,
      keys: [{ tag: 1, key: newKey() }],
      primary: 1,
      every: everyMs,
      rotated: now,
      step: now,
    };
    if ((await this.#c.bucket().create(R.keysKey(network), R.encode(rec))) === 'conflict') {
      throw new SidecarError('SIDECAR_NETWORK_EXISTS', `network id ${network} has keys already`);
    }
  }

  /** A removed network's keys and acknowledgements. */
  async remove(network: string): Promise<void> {
    const b = this.#c.bucket();
    await b.delete(R.keysKey(network));
    for (const [key] of this.#c.view.entries()) if (key.startsWith(`ack.${network}.`)) await b.delete(key);
  }

  get(network: string): NetworkKeys | undefined {
    const rec = this.#record(network);
    if (!rec) return undefined;
    const held = new Map<string, number[]>();
    for (const a of this.#acks(network)) {
      const addr = this.#c.addr?.(a.host);
      if (addr) held.set(addr, a.tags);
    }
    return {
      keys: rec.keys.map((k) => ({ tag: k.tag, key: Buffer.from(k.key, 'base64') })),
      primary: rec.primary,
      held,
    };
  }

  status(network: string): KeysStatus | undefined {
    const rec = this.#record(network);
    if (!rec) return undefined;
    return {
      tags: rec.keys.map((k) => k.tag),
      primary: rec.primary,
      rotating: rec.keys.length > 1,
      rotated: new Date(rec.rotated).toISOString(),
      next: new Date(rec.rotated + rec.every).toISOString(),
      everyMs: rec.every,
    };
  }

  /** This host now receives with `keys` and sends with their primary: it says so. */
  async ack(network: string, keys: NetworkKeys): Promise<void> {
    const key = R.ackKey(network, this.#c.hostId);
    const ack: R.ClusterKeysAck = {
      v: 1,
      host: this.#c.hostId,
      network,
      tags: keys.keys.map((k) => k.tag),
      primary: keys.primary,
    };
    const text = R.encode(ack);
    if (this.#c.view.text(key) === text) return;
    const rev = this.#c.view.revision(key);
    const b = this.#c.bucket();
    if (rev === undefined) await b.create(key, text);
    else await b.update(key, text, rev);
  }

  /**
   * Rotates a network's keys now, and resolves when the rotation is over (every host sends and
   * receives with the new key alone): its tag, and how long it took.
   */
  async rotate(network: string, timeoutMs = 4 * ACK_WAIT_MS): Promise<{ tag: number; ms: number }> {
    const t0 = performance.now();
    const rec = this.#record(network);
    if (!rec)
      throw new SidecarError('SIDECAR_CLUSTER_UNAVAILABLE', `network ${network} has no keys in the cluster (yet)`);
    const target = rec.keys.at(-1)!.tag + (rec.keys.length === 1 ? 1 : 0);
    if (rec.keys.length === 1) await this.#write(rec, this.#added(rec));
    await this.#until(() => {
      const now = this.#record(network);
      return now === undefined || (now.keys.length === 1 && now.primary >= target);
    }, timeoutMs);
    if (!this.#record(network)) throw new SidecarError('SIDECAR_NETWORK_NOT_FOUND', `network ${network} went`);
    return { tag: target, ms: Math.round(performance.now() - t0) };
  }

  /**
   * This host made a network's states from nothing though it had its keys before (its kernel
   * lost them: a reboot): its peers' states have moved on, so the network's keys rotate now.
   */
  async lost(network: string): Promise<void> {
    const rec = this.#record(network);
    if (!rec) return;
    this.#c.log(`cluster: the IPsec states of network ${network.slice(0, 12)} were lost here: rotating its keys`);
    if (rec.keys.length === 1) await this.#write(rec, this.#added(rec));
  }

  /** Whether this host has said it holds a network's keys. */
  acked(network: string): boolean {
    return this.#c.view.get(R.ackKey(network, this.#c.hostId)) !== undefined;
  }

  /** A host left: the networks whose keys it held rotate (driven by the first live host), so
   * its states go everywhere and what it knew no longer opens anything. */
  async gone(host: string): Promise<void> {
    for (const [key, held] of [...this.#c.view.entries()]) {
      const rec = held.value;
      if (!key.startsWith('net.') || !isKeys(rec) || rec.keys.length > 1) continue;
      if (!this.#c.view.get(R.ackKey(rec.network, host))) continue;
      const acks = this.#acks(rec.network);
      if (acks[0]?.host !== this.#c.hostId) continue;
      await this.#write(rec, this.#added(rec)).catch((err) =>
        this.#c.log(`cluster: rotating the keys of ${rec.network.slice(0, 12)}: ${(err as Error).message}`),
      );
    }
  }

  /** The bucket changed: waiters look again, and rotations this host drives go on. */
  changed(): void {
    for (const w of [...this.#waiters]) w();
    void this.drive();
  }

  /** Takes each rotation this host drives one step on, if it can; on every tick and change. */
  async drive(): Promise<void> {
    if (this.#driving) {
      this.#again = true;
      return;
    }
    this.#driving = true;
    try {
      do {
        this.#again = false;
        for (const [key, held] of [...this.#c.view.entries()]) {
          const rec = held.value;
          if (!key.startsWith('net.') || !isKeys(rec)) continue;
          await this.#step(rec).catch((err) =>
            this.#c.log(`cluster: rotating the keys of ${rec.network.slice(0, 12)}: ${(err as Error).message}`),
          );
        }
      } while (this.#again);
    } finally {
      this.#driving = false;
    }
  }

  async #step(rec: R.ClusterKeys): Promise<void> {
    const acks = this.#acks(rec.network);
    if (acks.length === 0 || acks[0]!.host !== this.#c.hostId) return; // another host drives it
    const now = Date.now();
    const newest = rec.keys.at(-1)!.tag;
    const late = (ok: (a: R.ClusterKeysAck) => boolean, what: string): boolean => {
      const behind = acks.filter((a) => !ok(a)).map((a) => a.host);
      if (behind.length === 0) return false;
      if (now - rec.step < ACK_WAIT_MS) return true;
      this.#c.log(`cluster: ${behind.join(', ')} did not ${what} key ${newest} in ${ACK_WAIT_MS} ms; going on`);
      return false;
    };
    if (rec.keys.length === 1) {
      if (now >= rec.rotated + rec.every) await this.#write(rec, this.#added(rec));
    } else if (rec.primary !== newest) {
      if (!late((a) => a.tags.includes(newest), 'receive with'))
        await this.#write(rec, { ...rec, primary: newest, step: now });
    } else if (!late((a) => a.primary === newest, 'send with')) {
      await this.#write(rec, { ...rec, keys: rec.keys.slice(-1), rotated: now, step: now });
    }
  }

  #added(rec: R.ClusterKeys): R.ClusterKeys {
    const tag = rec.keys.at(-1)!.tag + 1;
    return { ...rec, keys: [...rec.keys, { tag, key: newKey() }], step: Date.now() };
  }

  /** A step written, unless another host moved first (then the next change shows where it is). */
  async #write(old: R.ClusterKeys, rec: R.ClusterKeys): Promise<void> {
    const key = R.keysKey(old.network);
    const rev = this.#c.view.revision(key);
    if (rev === undefined) return;
    await this.#c.bucket().update(key, R.encode(rec), rev);
  }

  /** The acknowledgements of live hosts, by host id. */
  #acks(network: string): R.ClusterKeysAck[] {
    const prefix = `ack.${network}.`;
    return [...this.#c.view.entries()]
      .filter(([k, h]) => k.startsWith(prefix) && !isKeys(h.value) && this.#c.alive((h.value as R.ClusterKeysAck).host))
      .map(([, h]) => h.value as R.ClusterKeysAck)
      .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  }

  #record(network: string): R.ClusterKeys | undefined {
    const v = this.#c.view.get(R.keysKey(network));
    return isKeys(v) ? v : undefined;
  }

  #until(done: () => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        finish();
        resolve();
      };
      const timer = setTimeout(() => {
        finish();
        reject(new SidecarError('SIDECAR_CLUSTER_UNAVAILABLE', `the key rotation did not end in ${timeoutMs} ms`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }
}

const newKey = () => randomBytes(32).toString('base64');
