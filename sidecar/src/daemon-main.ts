// `cnmd daemon`: flags, an optional JSON config file, signals.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Io } from './cli/main.js';
import { Daemon, type DaemonConfig, defaultConfig } from './daemon.js';
import { SidecarError } from './errors.js';
import { firewallHooks } from './firewall-hooks.js';
import { checkLbDataplane, LB_DATAPLANE_MODES, type LbDataplaneMode } from './lb-ipvs.js';
import { parseNetworkSpec, parseServiceSpec } from './model.js';

const USAGE = `Usage: cnmd daemon [OPTIONS]

  --state-dir DIR       state (default /var/lib/cnmd)
  --socket PATH         admin API socket, mode 0600 (default /run/cnmd/cnmd.sock)
  --api-tcp HOST:PORT   also serve the admin API over TCP (off by default)
  --dns-upstream IP     upstream DNS server, repeatable (default: the host's resolv.conf)
  --resolv-conf PATH    the host's resolv.conf (default /etc/resolv.conf)
  --docker-socket PATH  follow the Docker engine at PATH (e.g. /var/run/docker.sock):
                        containers labelled cnmd.networks are attached (off by default)
  --lb-dataplane MODE   how vip services are balanced: auto (IPVS where the kernel offers
                        it, else nftables; the default), ipvs or nftables
  --docker-scope NAME   only containers labelled cnmd.scope=NAME (several cnmd on one
                        engine); without it, only containers with no cnmd.scope
  --config FILE         a JSON file with the same settings (stateDir, socket, apiTcp,
                        dnsUpstreams, resolvConf, dockerSocket, dockerScope, lbDataplane),
                        and networks and services to create at start when absent (the
                        bodies of POST /v1/networks and /v1/services);
                        flags win over it
`;

export async function loadConfig(args: string[]): Promise<DaemonConfig | 'help'> {
  const { values } = parseArgs({
    args,
    options: {
      'state-dir': { type: 'string' },
      socket: { type: 'string' },
      'api-tcp': { type: 'string' },
      'dns-upstream': { type: 'string', multiple: true },
      'resolv-conf': { type: 'string' },
      'docker-socket': { type: 'string' },
      'lb-dataplane': { type: 'string' },
      'docker-scope': { type: 'string' },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const config = defaultConfig();
  if (values.config) {
    let file: unknown;
    try {
      file = JSON.parse(await readFile(values.config, 'utf8'));
    } catch (cause) {
      throw new SidecarError('SIDECAR_CONFIG_INVALID', `${values.config}: ${(cause as Error).message}`, { cause });
    }
    if (typeof file !== 'object' || file === null || Array.isArray(file)) {
      throw new SidecarError('SIDECAR_CONFIG_INVALID', `${values.config}: not a JSON object`);
    }
    for (const [k, v] of Object.entries(file)) {
      if (k === 'networks') {
        config.networks = declared(values.config, k, v, parseNetworkSpec);
        continue;
      }
      if (k === 'services') {
        config.services = declared(values.config, k, v, parseServiceSpec);
        continue;
      }
      const want = k === 'dnsUpstreams' ? 'array' : k === 'sweepMs' ? 'number' : 'string';
      if (!(k in config) && !['apiTcp', 'dnsUpstreams', 'dockerSocket', 'dockerScope'].includes(k)) {
        throw new SidecarError('SIDECAR_CONFIG_INVALID', `${values.config}: unknown setting ${k}`);
      }
      if (want === 'array' ? !Array.isArray(v) || !v.every((x) => typeof x === 'string') : typeof v !== want) {
        throw new SidecarError('SIDECAR_CONFIG_INVALID', `${values.config}: ${k} must be a ${want}`);
      }
      (config as unknown as Record<string, unknown>)[k] = v;
    }
  }
  if (values['state-dir']) config.stateDir = values['state-dir'];
  if (values.socket) config.socket = values.socket;
  if (values['api-tcp']) config.apiTcp = values['api-tcp'];
  if (values['dns-upstream']) config.dnsUpstreams = values['dns-upstream'];
  if (values['resolv-conf']) config.resolvConf = values['resolv-conf'];
  if (values['docker-socket']) config.dockerSocket = values['docker-socket'];
  if (values['lb-dataplane']) config.lbDataplane = values['lb-dataplane'] as LbDataplaneMode;
  if (!LB_DATAPLANE_MODES.includes(config.lbDataplane)) {
    throw new SidecarError(
      'SIDECAR_CONFIG_INVALID',
      `lbDataplane ${JSON.stringify(config.lbDataplane)}: expected ${LB_DATAPLANE_MODES.join(', ')}`,
    );
  }
  if (values['docker-scope']) config.dockerScope = values['docker-scope'];
  return config;
}

/** The config file's networks or services, each checked as the API checks its body. */
function declared<T>(file: string, key: string, v: unknown, parse: (body: unknown) => T): T[] {
  if (!Array.isArray(v)) throw new SidecarError('SIDECAR_CONFIG_INVALID', `${file}: ${key} must be an array`);
  return v.map((body, i) => {
    try {
      return parse(body);
    } catch (cause) {
      throw new SidecarError('SIDECAR_CONFIG_INVALID', `${file}: ${key}[${i}]: ${(cause as Error).message}`, {
        cause,
      });
    }
  });
}

export async function runDaemon(args: string[], io: Io, _env: NodeJS.ProcessEnv): Promise<number> {
  const config = await loadConfig(args);
  if (config === 'help') {
    io.out(USAGE);
    return 0;
  }
  await checkLbDataplane(config.lbDataplane); // before the firewall writes its tables
  const daemon = new Daemon(config, { firewall: await firewallHooks(), log: (l) => io.err(`cnmd: ${l}\n`) });
  await daemon.start();
  const r = daemon.report;
  io.err(
    `cnmd: serving ${config.socket}; reconciled: ${r?.endpointsRemoved ?? 0} endpoint(s) removed, ` +
      `${r?.endpointsRebuilt ?? 0} rebuilt, ${r?.linksDeleted ?? 0} stray link(s) deleted\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await daemon.close();
  return 0;
}
