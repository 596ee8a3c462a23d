// Docker's network modes that make no endpoint: `none` (only lo), `host` (the host's own
// namespace: nothing to make, the host's resolver) and `container:<name>` (another
// container's namespace, whose interfaces and names it shares). They are recorded like
// endpoints so that `ps`, `inspect` and `detach` see them.
import { createHash, randomBytes } from 'node:crypto';
import { SidecarError } from '../errors.js';
import { resolveSandbox } from '../sandbox/path.js';
import type { NetworkContext } from './context.js';
import type { EndpointRecord, NetworkRecord } from './records.js';
import type { AttachSpec, NetworkSpec } from './spec.js';

export type Mode = 'none' | 'host' | 'container';

export function modeOf(network: string): Mode | undefined {
  if (network === 'none' || network === 'host') return network;
  return network.startsWith('container:') ? 'container' : undefined;
}

/** The record of Docker's predefined network `none` or `host`: never stored, never listed. */
function predefined(mode: 'none' | 'host'): NetworkRecord {
  const spec: NetworkSpec = {
    name: mode,
    driver: mode === 'none' ? 'null' : 'host',
    ipv6: false,
    internal: true,
    mtu: 1500,
    icc: true,
    options: {},
  };
  return { id: mode, spec, device: '', pool4: '', subnet: '', created: '', state: 'ready' };
}

export async function attachMode(c: NetworkContext, spec: AttachSpec, mode: Mode): Promise<EndpointRecord> {
  const ref = resolveSandbox(spec.sandbox, { host: mode === 'host' });
  const mine = c.endpoints.all().filter((e) => e.sandboxKey === ref.key);
  if (spec.publish.length > 0 || spec.ip || spec.ip6 || spec.mac) {
    throw new SidecarError(
      'SIDECAR_INVALID_ARGUMENT',
      `--network ${spec.network} takes no address, MAC or published port`,
    );
  }
  const ep: EndpointRecord = {
    id: randomBytes(32).toString('hex'),
    containerId: createHash('sha256')
      .update(`cnmd-sandbox:${ref.key}:${spec.name ?? ''}`)
      .digest('hex'),
    sandbox: ref.path,
    sandboxKey: ref.key,
    network: spec.network,
    aliases: spec.aliases,
    ifname: 'lo',
    hostIf: '',
    publish: [],
    defaultRoute: false,
    state: 'ready',
    mode,
  };
  if (spec.name) ep.name = spec.name;
  if (ref.netnsName) ep.netnsName = ref.netnsName;
  if (mode === 'none' || mode === 'host') {
    if (mine.length > 0) {
      throw new SidecarError(
        'SIDECAR_ENDPOINT_EXISTS',
        `${spec.sandbox} is on networks already: --network ${mode} stands alone`,
      );
    }
    // Docker's predefined networks, served by the null and host drivers.
    await c.drivers.get(mode === 'none' ? 'null' : 'host').join(predefined(mode), ep);
  } else {
    const target = spec.network.slice('container:'.length);
    const theirs = c.endpoints.all().filter((e) => e.name === target && !e.mode);
    if (theirs.length === 0)
      throw new SidecarError('SIDECAR_ENDPOINT_NOT_FOUND', `no container ${target} with a network`);
    if (theirs[0]!.sandboxKey !== ref.key) {
      throw new SidecarError(
        'SIDECAR_INVALID_ARGUMENT',
        `--network container:${target}: ${spec.sandbox} is not its namespace`,
      );
    }
    ep.shares = target;
  }
  await c.endpoints.put(ep);
  if (mode === 'container') await shareNames(c, ep);
  return ep;
}

/** A container in another's namespace answers, by its own name, with that one's addresses. */
export async function shareNames(c: NetworkContext, ep: EndpointRecord): Promise<void> {
  if (!ep.name) return;
  for (const theirs of c.endpoints.all().filter((e) => e.name === ep.shares && !e.mode)) {
    const net = c.networks.get(theirs.network);
    if (!net) continue;
    c.dns.alias(net, { ...theirs, containerId: ep.containerId, name: ep.name, aliases: ep.aliases }, true);
  }
}

export async function detachMode(c: NetworkContext, ep: EndpointRecord): Promise<void> {
  if (ep.mode === 'container') {
    for (const net of c.networks.all()) c.dns.alias(net, ep, false);
  }
  await c.endpoints.delete(ep.id);
}
