// `cnmd daemon`: flags, an optional JSON config file, signals. Every setting is listed once
// (SETTINGS) with its flag, its type and its range; the file may hold only those (its own keys:
// `toString` is not a setting), and flags win over it.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { HOST_ID } from '../cluster/records.js';
import { SidecarError } from '../errors.js';
import { firewallHooks } from '../firewall/hooks.js';
import type { Io } from '../io.js';
import { checkLbDataplane, LB_DATAPLANE_MODES } from '../lb/dataplane.js';
import { parseNetworkSpec } from '../network/parse.js';
import { parseServiceSpec } from '../network/parse-service.js';
import { LOG_FORMATS, LOG_LEVELS, Logger } from '../telemetry/log.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { Daemon, type DaemonConfig, defaultConfig } from './daemon.js';

const USAGE = `Usage: cnmd daemon [OPTIONS]

  --state-dir DIR          state (default /var/lib/cnmd)
  --socket PATH            admin API socket, mode 0600 (default /run/cnmd/cnmd.sock)
  --api-tcp [HOST:]PORT    also serve the admin API over TCP, on 127.0.0.1 unless HOST is
                           given (an IP address); needs --api-token-file (off by default)
  --api-token-file FILE    the bearer token TCP clients must send (Authorization: Bearer …)
  --dns-upstream IP        upstream DNS server, repeatable (default: the host's resolv.conf)
  --resolv-conf PATH       the host's resolv.conf (default /etc/resolv.conf)
  --docker-socket PATH     follow the Docker engine at PATH (e.g. /var/run/docker.sock):
                           containers labelled cnmd.networks are attached (off by default)
  --docker-scope NAME      only containers labelled cnmd.scope=NAME (several cnmd on one
                           engine); without it, only containers with no cnmd.scope
  --docker-netns-dir DIR   where the engine's sandboxes (SandboxKey) are seen (default
                           /run/docker/netns)
  --docker-create-networks true|false
                           create a network a label names when it is missing (default: true,
                           false when the config file declares networks)
  --docker-max-networks N  at most N networks made from labels at once (default 16)
  --lb-dataplane MODE      how vip services are balanced: auto (IPVS where the kernel offers
                           it, else nftables; the default), ipvs or nftables
  --cluster URL[,URL]      join a cluster of hosts over NATS (nats://HOST:PORT of its servers):
                           global networks, their names, services and addresses shared
  --host-id NAME           this host's name in the cluster (default: the hostname)
  --advertise-addr IP      this host's address on the network between hosts (the overlay's)
  --cluster-creds FILE     a NATS credentials file
  --cluster-tls-ca FILE    a CA to check the NATS servers' TLS certificates with
  --cluster-grace-ms N     a host silent this long is withdrawn (default 10000)
  --metrics-addr [HOST:]PORT
                           serve Prometheus metrics (/metrics) and the status page (/) there,
                           on 127.0.0.1 unless HOST is given (off by default); OTLP push and
                           traces follow the OTEL_* variables
  --log-format text|json   one line per event, as text (the default) or JSON
  --log-level LEVEL        debug, info (the default), warn or error
  --config FILE            a JSON file with the same settings (stateDir, socket, apiTcp,
                           apiTokenFile, dnsUpstreams, resolvConf, sweepMs, dockerSocket,
                           dockerScope, dockerNetnsDir, dockerCreateNetworks,
                           dockerMaxNetworks, lbDataplane, cluster, hostId, advertiseAddr,
                           clusterCreds, clusterTlsCa, clusterGraceMs, metricsAddr, logFormat,
                           logLevel), and networks and services to create
                           at start when absent (the bodies of POST /v1/networks and
                           /v1/services); flags win over it
`;

type Kind = 'string' | 'strings' | 'boolean' | { min: number; max: number } | readonly string[];

/** Every setting: its config file key, its flag (if any), its type. */
const SETTINGS: { key: string; flag?: string; kind: Kind }[] = [
  { key: 'stateDir', flag: 'state-dir', kind: 'string' },
  { key: 'socket', flag: 'socket', kind: 'string' },
  { key: 'apiTcp', flag: 'api-tcp', kind: 'string' },
  { key: 'apiTokenFile', flag: 'api-token-file', kind: 'string' },
  { key: 'dnsUpstreams', flag: 'dns-upstream', kind: 'strings' },
  { key: 'resolvConf', flag: 'resolv-conf', kind: 'string' },
  // 0: never; else at least 100 ms (each sweep looks at every sandbox).
  { key: 'sweepMs', kind: { min: 0, max: 3_600_000 } },
  { key: 'dockerSocket', flag: 'docker-socket', kind: 'string' },
  { key: 'dockerScope', flag: 'docker-scope', kind: 'string' },
  { key: 'dockerNetnsDir', flag: 'docker-netns-dir', kind: 'string' },
  { key: 'dockerCreateNetworks', flag: 'docker-create-networks', kind: 'boolean' },
  { key: 'dockerMaxNetworks', flag: 'docker-max-networks', kind: { min: 0, max: 1000 } },
  { key: 'lbDataplane', flag: 'lb-dataplane', kind: LB_DATAPLANE_MODES },
  { key: 'cluster', flag: 'cluster', kind: 'strings' },
  { key: 'hostId', flag: 'host-id', kind: 'string' },
  { key: 'advertiseAddr', flag: 'advertise-addr', kind: 'string' },
  { key: 'clusterCreds', flag: 'cluster-creds', kind: 'string' },
  { key: 'clusterTlsCa', flag: 'cluster-tls-ca', kind: 'string' },
  { key: 'clusterGraceMs', flag: 'cluster-grace-ms', kind: { min: 1000, max: 600_000 } },
  { key: 'metricsAddr', flag: 'metrics-addr', kind: 'string' },
  { key: 'logFormat', flag: 'log-format', kind: LOG_FORMATS },
  { key: 'logLevel', flag: 'log-level', kind: LOG_LEVELS },
];

const bad = (message: string) => new SidecarError('SIDECAR_CONFIG_INVALID', message);

/** A setting's value from the file (JSON) or a flag (text), checked against its kind. */
function value(where: string, kind: Kind, v: unknown): unknown {
  if (kind === 'strings') {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== ''))
      throw bad(`${where} must be a list of strings`);
    return v;
  }
  if (kind === 'boolean') {
    if (v === 'true' || v === 'false') return v === 'true';
    if (typeof v !== 'boolean') throw bad(`${where} must be true or false`);
    return v;
  }
  if (typeof kind === 'object' && 'min' in kind) {
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < kind.min || n > kind.max) {
      throw bad(`${where} must be an integer from ${kind.min} to ${kind.max}`);
    }
    return n;
  }
  if (typeof v !== 'string' || v === '' || v.includes('\0')) throw bad(`${where} must be a non-empty string`);
  if (Array.isArray(kind) && !kind.includes(v)) throw bad(`${where} ${JSON.stringify(v)}: expected ${kind.join(', ')}`);
  return v;
}

/** `PORT`, `HOST:PORT` or `[V6]:PORT`, HOST an address (no name is looked up); 127.0.0.1 by default. */
export function parseTcpAddress(s: string, what = 'apiTcp'): { host: string; port: number } {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):)?(\d{1,5})$/.exec(s);
  const host = m?.[1]?.replace(/^\[|\]$/g, '') ?? '127.0.0.1';
  const port = Number(m?.[2]);
  if (!m || isIP(host) === 0 || !(port >= 0 && port <= 65535)) {
    throw bad(`${what} ${JSON.stringify(s)}: expected [HOST:]PORT, HOST an IP address`);
  }
  return { host, port };
}

export async function loadConfig(args: string[]): Promise<DaemonConfig | 'help'> {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    config: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const s of SETTINGS)
    if (s.flag) options[s.flag] = { type: 'string', ...(s.kind === 'strings' ? { multiple: true } : {}) };
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args, options, strict: true }).values;
  } catch (cause) {
    throw new SidecarError('SIDECAR_CONFIG_INVALID', (cause as Error).message, { cause });
  }
  if (values.help) return 'help';
  const settings: Record<string, unknown> = {};
  let config = defaultConfig();
  if (typeof values.config === 'string') {
    const file = values.config;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'));
    } catch (cause) {
      throw new SidecarError('SIDECAR_CONFIG_INVALID', `${file}: ${(cause as Error).message}`, { cause });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad(`${file}: not a JSON object`);
    for (const [k, v] of Object.entries(parsed)) {
      if (k === 'networks') config.networks = declared(file, k, v, parseNetworkSpec);
      else if (k === 'services') config.services = declared(file, k, v, parseServiceSpec);
      else {
        const s = SETTINGS.find((x) => x.key === k);
        if (!s) throw bad(`${file}: unknown setting ${JSON.stringify(k)}`);
        settings[k] = value(`${file}: ${k}`, s.kind, v);
      }
    }
  }
  for (const s of SETTINGS) {
    if (s.flag && values[s.flag] !== undefined) settings[s.key] = value(`--${s.flag}`, s.kind, values[s.flag]);
  }
  const { apiTcp, apiTokenFile, metricsAddr, ...plain } = settings;
  config = { ...config, ...(plain as Partial<DaemonConfig>) };
  if (metricsAddr !== undefined) config.metricsAddr = parseTcpAddress(metricsAddr as string, 'metricsAddr');
  if (config.sweepMs > 0 && config.sweepMs < 100) throw bad('sweepMs must be 0 (never) or at least 100');
  if (apiTcp !== undefined) {
    config.apiTcp = parseTcpAddress(apiTcp as string);
    if (apiTokenFile === undefined)
      throw bad('apiTcp needs apiTokenFile (--api-token-file): the TCP API has no other access control');
  }
  if (apiTokenFile !== undefined) config.apiToken = await readToken(apiTokenFile as string);
  checkCluster(config);
  return config;
}

/** --cluster takes nats:// URLs, comma-separated or repeated; the host id names this host in it. */
function checkCluster(config: DaemonConfig): void {
  if (!config.cluster) {
    for (const k of ['hostId', 'advertiseAddr', 'clusterCreds', 'clusterTlsCa'] as const) {
      if (config[k] !== undefined) throw bad(`${k} needs cluster (--cluster)`);
    }
    return;
  }
  config.cluster = config.cluster.flatMap((s) => s.split(',')).filter((s) => s !== '');
  for (const url of config.cluster) {
    if (!/^(nats|tls):\/\/[^\s/]+:\d{1,5}$/.test(url))
      throw bad(`cluster ${JSON.stringify(url)}: expected nats://HOST:PORT`);
  }
  if (config.cluster.length === 0) throw bad('cluster names no NATS server');
  config.hostId ??= hostname().split('.')[0];
  if (!HOST_ID.test(config.hostId ?? '')) {
    throw bad(`hostId ${JSON.stringify(config.hostId)}: [a-zA-Z0-9][a-zA-Z0-9_-]* of at most 63 (--host-id)`);
  }
  if (config.advertiseAddr !== undefined && isIP(config.advertiseAddr) === 0) {
    throw bad(`advertiseAddr ${JSON.stringify(config.advertiseAddr)} is not an IP address`);
  }
}

async function readToken(file: string): Promise<string> {
  let token: string;
  try {
    token = (await readFile(file, 'utf8')).trim();
  } catch (cause) {
    throw new SidecarError('SIDECAR_CONFIG_INVALID', `apiTokenFile ${file}: ${(cause as Error).message}`, { cause });
  }
  if (!/^[\x21-\x7e]{16,4096}$/.test(token)) {
    throw bad(`apiTokenFile ${file}: the token must be 16 to 4096 printable characters, no spaces`);
  }
  return token;
}

/** The config file's networks or services, each checked as the API checks its body. */
function declared<T>(file: string, key: string, v: unknown, parse: (body: unknown) => T): T[] {
  if (!Array.isArray(v)) throw bad(`${file}: ${key} must be an array`);
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

export async function runDaemon(args: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  const config = await loadConfig(args);
  if (config === 'help') {
    io.out(USAGE);
    return 0;
  }
  await checkLbDataplane(config.lbDataplane); // before the firewall writes its tables
  const logger = new Logger({ format: config.logFormat, level: config.logLevel, write: (t) => io.err(t) });
  const log = logger.line;
  const telemetry = new Telemetry({ metricsAddr: config.metricsAddr, env, log: logger, hostId: config.hostId });
  const daemon = new Daemon(config, { firewall: await firewallHooks(log), log, telemetry });
  try {
    await daemon.start();
  } catch (err) {
    await daemon.close().catch(() => {}); // a listener that could not bind: nothing left behind
    throw err;
  }
  const r = daemon.report;
  logger.info(
    `serving ${config.socket}; reconciled: ${r?.endpointsRemoved ?? 0} endpoint(s) removed, ` +
      `${r?.endpointsRebuilt ?? 0} rebuilt, ${r?.endpointsFailed ?? 0} failed, ${r?.linksDeleted ?? 0} stray link(s) deleted`,
    { removed: r?.endpointsRemoved, rebuilt: r?.endpointsRebuilt, failed: r?.endpointsFailed },
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await daemon.close();
  return 0;
}
