// This host's endpoints on global networks as the cluster holds them (bucket cnmd_endpoints,
// keys host.<host>.<id>): put by difference from what the view of the bucket shows.
import type { EndpointRecord } from '../network/records.js';
import { type Bucket, casPut } from './kv.js';
import * as R from './records.js';
import type { BucketView } from './view.js';

/** The record of a local endpoint that other hosts read; `vtep`: this host's underlay address. */
export function ownRecord(host: string, ep: EndpointRecord, vtep?: string): R.ClusterEndpoint {
  const e: R.ClusterEndpoint = {
    v: 1,
    host,
    id: ep.id,
    network: ep.network,
    containerId: ep.containerId,
    aliases: ep.aliases,
  };
  if (ep.name) e.name = ep.name;
  if (ep.hostname) e.hostname = ep.hostname;
  if (ep.ip) e.ip = ep.ip;
  if (ep.ip6) e.ip6 = ep.ip6;
  if (ep.mac) e.mac = ep.mac;
  if (vtep) e.vtep = vtep;
  if (ep.service) {
    e.service = ep.service;
    e.weight = ep.weight ?? 1;
  }
  return e;
}

/**
 * Puts this host's endpoints where the bucket's differ and deletes what the bucket has of this
 * host's that it has not; false when some write must be tried again (a conflict or an outage).
 */
export async function putOwn(
  bucket: Bucket,
  view: BucketView<R.ClusterEndpoint>,
  host: string,
  endpoints: EndpointRecord[],
  vtep?: string,
): Promise<boolean> {
  const want = new Map(endpoints.map((e) => [R.endpointKey(host, e.id), R.encode(ownRecord(host, e, vtep))]));
  const mine = `host.${host}.`;
  let clean = true;
  try {
    for (const [key, held] of view.entries()) {
      if (key.startsWith(mine) && !want.has(key)) await bucket.delete(key, held.revision);
    }
    for (const [key, text] of want) {
      if (view.text(key) === text) continue;
      const rev = view.revision(key);
      const r = rev === undefined ? await bucket.create(key, text) : await bucket.update(key, text, rev);
      if (r === 'conflict') clean = false;
    }
  } catch {
    clean = false;
  }
  return clean;
}

/** Puts a host's heartbeat: it is alive, at this address, since `started` (ms since the epoch). */
export async function putBeat(bucket: Bucket, host: string, addr: string | undefined, started: number): Promise<void> {
  const beat: R.ClusterHost = { v: 1, host, ...(addr ? { addr } : {}), at: Date.now(), started };
  await casPut(bucket, host, R.encode(beat));
}

/**
 * This host's endpoint records in the cluster: each attach and detach put or deleted at once, one
 * at a time and in order (a detach right after its attach must not be overtaken by it); what
 * could not go out leaves them dirty, and putAll puts every one back where it differs.
 */
export class OwnRecords {
  dirty = true;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly host: string,
    readonly vtep: string | undefined,
  ) {}

  /** Puts (on) or deletes an endpoint's record; without a bucket (not connected), marks dirty. */
  publish(bucket: Bucket | undefined, ep: EndpointRecord, on: boolean): void {
    if (!bucket) {
      this.dirty = true;
      return;
    }
    const key = R.endpointKey(this.host, ep.id);
    this.#queue = this.#queue
      .then(
        (): Promise<unknown> =>
          on ? casPut(bucket, key, R.encode(ownRecord(this.host, ep, this.vtep))) : bucket.delete(key),
      )
      .catch(() => {
        this.dirty = true;
      });
  }

  async putAll(bucket: Bucket, view: BucketView<R.ClusterEndpoint>, endpoints: EndpointRecord[]): Promise<void> {
    this.dirty = false;
    if (!(await putOwn(bucket, view, this.host, endpoints, this.vtep))) this.dirty = true;
  }

  /** Once the writes asked for so far are done. */
  async settled(): Promise<void> {
    await this.#queue.catch(() => {});
  }
}
