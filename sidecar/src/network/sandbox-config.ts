// What the controller does inside a sandbox once a driver has put an endpoint's interface there
// (libnetwork's osl: the sandbox's addresses and routes are the controller's, not the driver's):
// addresses, links up, the default route, and its hand-over when the endpoint that gave it goes.
import { SidecarError } from '../errors.js';
import type { Kernel, NetnsLinks } from '../kernel/types.js';
import type { EndpointRecord, NetworkRecord } from './records.js';
import type { Records } from './store.js';

/** Configures the endpoint's interface in its sandbox (`sb` open there), down until now. */
export async function configureEndpoint(
  sb: NetnsLinks,
  net: NetworkRecord,
  ep: EndpointRecord,
  endpoints: Records<EndpointRecord>,
): Promise<void> {
  // arp_notify before the link comes up: the kernel then announces the new MAC itself.
  await sb.setArpNotify(ep.ifname, true);
  if (ep.ip) await sb.addAddress(ep.ifname, `${ep.ip}/${net.subnet.split('/')[1]}`);
  if (ep.ip6 && net.subnet6) await sb.addAddress(ep.ifname, `${ep.ip6}/${net.subnet6.split('/')[1]}`);
  await sb.setLink('lo', { up: true });
  await sb.setLink(ep.ifname, { up: true });
  // The first network with a gateway gives the default route (internal ones give none),
  // unless an endpoint asks for it (--default-route).
  if (!net.spec.internal && net.gateway) await defaultRoute(sb, net, ep, ep.wantDefault === true, endpoints);
}

/** Points the sandbox's default route at the network's gateway: when it has none, or `force`. */
async function defaultRoute(
  sb: NetnsLinks,
  net: NetworkRecord,
  ep: EndpointRecord,
  force: boolean,
  endpoints: Records<EndpointRecord>,
): Promise<void> {
  if (force || !(await sb.routes(4)).some((r) => r.dst === 'default')) {
    await sb.addRoute({ dst: 'default', gateway: net.gateway!, replace: true });
    ep.defaultRoute = true;
    for (const other of endpoints.all()) {
      if (other.sandboxKey === ep.sandboxKey && other.id !== ep.id && other.defaultRoute) {
        await endpoints.put({ ...other, defaultRoute: false });
      }
    }
  }
  if (net.gateway6 && (force || !(await sb.routes(6)).some((r) => r.dst === 'default'))) {
    await sb.addRoute({ dst: 'default', gateway: net.gateway6, replace: true });
  }
}

/** The endpoint that gave the default route went: the next network with a gateway gives it. */
export async function handOverDefaultRoute(
  kernel: Kernel,
  networks: Records<NetworkRecord>,
  endpoints: Records<EndpointRecord>,
  gone: EndpointRecord,
): Promise<void> {
  if (!gone.defaultRoute) return;
  const next = endpoints
    .all()
    .find((e) => e.sandboxKey === gone.sandboxKey && e.id !== gone.id && e.state === 'ready' && !e.mode);
  const net = next && networks.get(next.network);
  if (!next || !net?.gateway || net.spec.internal) return;
  const sb = await kernel.open(next.sandbox).catch(() => undefined);
  if (!sb) return;
  try {
    await defaultRoute(sb, net, next, true, endpoints);
    await endpoints.put(next);
  } finally {
    await sb.close();
  }
}

/**
 * The interface name of a new endpoint in the sandbox at `path`: `wanted`, refused when the
 * sandbox has it or an endpoint of it is given it; else the first ethN neither has.
 */
export async function nextIfname(
  kernel: Kernel,
  path: string,
  mine: EndpointRecord[],
  wanted?: string,
): Promise<string> {
  const sb = await kernel.open(path);
  try {
    const taken = new Set([...(await sb.links()).map((l) => l.name), ...mine.map((e) => e.ifname)]);
    if (wanted !== undefined) {
      // Refused before anything is allocated or written, rather than by the kernel half way.
      if (taken.has(wanted))
        throw new SidecarError('SIDECAR_LINK_EXISTS', `${path} has an interface ${wanted} already`);
      return wanted;
    }
    for (let i = 0; ; i++) if (!taken.has(`eth${i}`)) return `eth${i}`;
  } finally {
    await sb.close();
  }
}
