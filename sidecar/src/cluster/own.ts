// This host's endpoints on global networks as the cluster holds them (bucket cnmd_endpoints,
// keys host.<host>.<id>): put by difference from what the view of the bucket shows.
import type { EndpointRecord } from '../network/records.js';
import type { Bucket } from './kv.js';
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
