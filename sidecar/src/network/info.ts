// What `network ls/inspect`, `ps` and `inspect` tell of the records.
import type { EndpointRecord, NetworkRecord } from './records.js';
import type { EndpointInfo, NetworkInfo } from './spec.js';

export function networkInfo(n: NetworkRecord, endpoints: EndpointRecord[]): NetworkInfo {
  const info: NetworkInfo = {
    ...n.spec,
    id: n.id,
    device: n.device,
    subnet: n.subnet,
    created: n.created,
    endpoints: endpoints.filter((e) => e.network === n.id && e.state === 'ready').length,
  };
  if (n.gateway) info.gateway = n.gateway;
  if (n.subnet6) info.subnet6 = n.subnet6;
  if (n.gateway6) info.gateway6 = n.gateway6;
  return info;
}

/** `failure`: why a restart could not bring the endpoint back, if it could not. */
export function endpointInfo(
  e: EndpointRecord,
  net: NetworkRecord | undefined,
  failure?: { code: string; message: string },
): EndpointInfo {
  const info: EndpointInfo = {
    id: e.id,
    sandbox: e.sandbox,
    network: net?.spec.name ?? e.network,
    aliases: e.aliases,
    ifname: e.ifname,
    mac: e.mac ?? '',
    ip: e.ip ?? '',
    publish: e.publish,
    status: failure ? 'failed' : 'ready',
  };
  if (failure) info.error = failure;
  if (e.name) info.name = e.name;
  if (e.ip6) info.ip6 = e.ip6;
  return info;
}
