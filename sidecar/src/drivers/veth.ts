// An endpoint as a veth pair whose host end is a port of the network's bridge (hairpin on, so
// a container reaches its own published ports) and whose other end is made directly in the
// sandbox under its final name: the endpoint of the bridge and overlay drivers alike.
import { ignoreMissing } from '../kernel/ignore-missing.js';
import type { NetnsLinks } from '../kernel/types.js';
import type { EndpointRecord, NetworkRecord } from '../network/records.js';

export async function joinVeth(host: NetnsLinks, net: NetworkRecord, ep: EndpointRecord, mtu: number): Promise<void> {
  const peer = { name: ep.ifname, netns: ep.sandbox, mtu, ...(ep.mac ? { mac: ep.mac } : {}) };
  await host.addVeth({ name: ep.hostIf, master: net.device, mtu, up: true, peer });
  await host.setHairpin(ep.hostIf, true);
}

/** The host end: deleting it deletes the pair. Gone already when the sandbox died. */
export async function leaveVeth(host: NetnsLinks, ep: EndpointRecord): Promise<void> {
  await ignoreMissing(host.deleteLink(ep.hostIf));
}

export async function vethPresent(host: NetnsLinks, ep: EndpointRecord): Promise<boolean> {
  return (await host.links()).some((l) => l.name === ep.hostIf);
}
