// Docker's network modes that make no endpoint: `none` (only lo), `host` (the host's own
// namespace: nothing to make, the host's resolver) and `container:<name>` (another
// container's namespace, whose interfaces and names it shares). They are recorded like
// endpoints so that `ps`, `inspect` and `detach` see them.
import { createHash, randomBytes } from 'node:crypto';
import type { NetworkController } from './controller.js';
import { SidecarError } from './errors.js';
import type { AttachSpec } from './model.js';
import type { EndpointRecord } from './records.js';
import { ownNetnsKey, resolveSandbox } from './sandbox-path.js';

export type Mode = 'none' | 'host' | 'container';

export function modeOf(network: string): Mode | undefined {
  if (network === 'none' || network === 'host') return network;
  return network.startsWith('container:') ? 'container' : undefined;
}

export async function attachMode(c: NetworkController, spec: AttachSpec, mode: Mode): Promise<EndpointRecord> {
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
    if (mode === 'host' && ownNetnsKey() !== ref.key) {
      throw new SidecarError('SIDECAR_INVALID_ARGUMENT', `--network host: ${spec.sandbox} is not the host's namespace`);
    }
    if (mode === 'none') {
      const sb = await c.kernel.open(ref.path);
      try {
        await sb.setLink('lo', { up: true });
      } finally {
        await sb.close();
      }
    }
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
export async function shareNames(c: NetworkController, ep: EndpointRecord): Promise<void> {
  if (!ep.name) return;
  for (const theirs of c.endpoints.all().filter((e) => e.name === ep.shares && !e.mode)) {
    const net = c.networks.get(theirs.network);
    if (!net) continue;
    c.dns.alias(net, { ...theirs, containerId: ep.containerId, name: ep.name, aliases: ep.aliases }, true);
  }
}

export async function detachMode(c: NetworkController, ep: EndpointRecord): Promise<void> {
  if (ep.mode === 'container') {
    for (const net of c.networks.all()) c.dns.alias(net, ep, false);
  }
  await c.endpoints.delete(ep.id);
}
