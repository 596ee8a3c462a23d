// `cnmd`: the daemon and a Docker-style CLI that talks to it over the admin socket.
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { ApiClient } from '../api/client.js';
import { ApiError } from '../api/errors.js';
import type { EndpointInfo, NetworkInfo, ServiceInfo } from '../model.js';
import { table } from './table.js';

export const DEFAULT_SOCKET = '/run/cnmd/cnmd.sock';

const USAGE = `Usage: cnmd COMMAND [OPTIONS]

Commands:
  daemon                         run the daemon (see cnmd daemon --help)
  network create NAME [OPTIONS]  create a network
      --driver bridge|macvlan      (bridge)
      --subnet CIDR                repeat for an IPv6 subnet too
      --gateway IP                 repeat for an IPv6 gateway too
      --ip-range CIDR              where dynamic addresses come from
      --ipv6                       give the network an IPv6 subnet as well
      --internal                   no traffic leaves the network
      --mtu N                      (1500)
      --opt KEY=VALUE              driver options: parent=IFACE for macvlan
      --icc=false                  containers on the network cannot reach each other
  network ls | inspect NAME | rm NAME
  attach NETNS --network NET [--name NAME] [--alias A]... [--ip IP] [--ip6 IP] [--mac MAC]
         [--ifname IF] [--publish [HOSTIP:]HOSTPORT:PORT[/PROTO]]... [--service NAME [--weight N]]
         [--default-route]            this network's gateway becomes the default route
                                 NETNS: /proc/PID/ns/net, a Docker SandboxKey, or an ip-netns name
  service create NAME --network NET [--vip IP [--vip IPV6]] [--port [NAME=]PORT[:TARGET][/PROTO]]...
         [--scheduler rr|wrr|lc|sh] [--mode vip|dnsrr] [--publish [HOSTIP:]HOSTPORT:PORT[/PROTO]]...
         [--health tcp:PORT|http:PORT[/PATH][,interval=5s][,timeout=1s][,rise=2][,fall=3]]
  service ls | inspect NAME | rm NAME | backends NAME   [--network NET when the name is on several]
  detach NETNS [--network NET]
  ps                             list endpoints
  inspect NAME|NETNS             a container's endpoints

Every read command takes --json. Global: --socket PATH (default $CNMD_SOCKET or ${DEFAULT_SOCKET}).
`;

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** Runs one CLI invocation; returns the exit code. */
export async function main(argv: string[], io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // --socket may come before the command too, as `docker -H` does.
  const lead = argv[0] === '--socket' ? argv.slice(0, 2) : argv[0]?.startsWith('--socket=') ? argv.slice(0, 1) : [];
  const [cmd, ...tail] = argv.slice(lead.length);
  const rest = [...tail, ...lead];
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    io.out(USAGE);
    return cmd ? 0 : 2;
  }
  try {
    if (cmd === 'daemon') {
      const { runDaemon } = await import('../daemon-main.js');
      return await runDaemon(rest, io, env);
    }
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        socket: { type: 'string' },
        json: { type: 'boolean' },
        driver: { type: 'string' },
        subnet: { type: 'string', multiple: true },
        gateway: { type: 'string', multiple: true },
        'ip-range': { type: 'string' },
        ipv6: { type: 'boolean' },
        internal: { type: 'boolean' },
        mtu: { type: 'string' },
        opt: { type: 'string', multiple: true },
        icc: { type: 'string' },
        network: { type: 'string' },
        name: { type: 'string' },
        alias: { type: 'string', multiple: true },
        ip: { type: 'string' },
        ip6: { type: 'string' },
        mac: { type: 'string' },
        ifname: { type: 'string' },
        publish: { type: 'string', multiple: true, short: 'p' },
        service: { type: 'string' },
        weight: { type: 'string' },
        'default-route': { type: 'boolean' },
        vip: { type: 'string', multiple: true },
        health: { type: 'string' },
        port: { type: 'string', multiple: true },
        scheduler: { type: 'string' },
        mode: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const api = new ApiClient(values.socket ?? env.CNMD_SOCKET ?? DEFAULT_SOCKET);
    const json = (v: unknown) => io.out(`${JSON.stringify(v, null, 2)}\n`);
    const need = (i: number, what: string) => {
      const v = positionals[i];
      if (!v) throw new ApiError('API_INVALID_ARGUMENT', `${what} is required (cnmd --help)`);
      return v;
    };

    const sub = cmd === 'network' || cmd === 'service' ? `${cmd} ${positionals[0] ?? ''}` : cmd;
    const svcPath = () => {
      const q = values.network ? `?network=${encodeURIComponent(values.network)}` : '';
      return `/services/${encodeURIComponent(need(1, 'a service name'))}${q}`;
    };
    switch (sub) {
      case 'service create': {
        if (!values.network) throw new ApiError('API_INVALID_ARGUMENT', '--network is required');
        const body: Record<string, unknown> = {
          name: need(1, 'a service name'),
          network: values.network,
          ports: values.port ?? [],
        };
        for (const k of ['scheduler', 'mode', 'health'] as const) if (values[k]) body[k] = values[k];
        for (const v of values.vip ?? []) body[isIP(v) === 6 ? 'vip6' : 'vip'] = v;
        if (values.publish) body.publish = values.publish;
        const svc = await api.call<ServiceInfo>('POST', '/services', body);
        io.out(`${[svc.vip, svc.vip6].filter(Boolean).join(' ') || svc.mode}\n`);
        return 0;
      }
      case 'service ls': {
        const svcs = await api.call<ServiceInfo[]>('GET', '/services');
        if (values.json) json(svcs);
        else
          io.out(
            `${table(
              ['NAME', 'NETWORK', 'MODE', 'VIP', 'PORTS', 'SCHEDULER', 'BACKENDS'],
              svcs.map((s) => [
                s.name,
                s.network,
                s.mode,
                [s.vip, s.vip6].filter(Boolean).join(','),
                s.ports.map((p) => `${p.port}/${p.proto}`).join(',') || '*',
                s.scheduler,
                String(s.backends.length),
              ]),
            )}\n`,
          );
        return 0;
      }
      case 'service inspect':
        json(await api.call('GET', svcPath()));
        return 0;
      case 'service rm':
        await api.call('DELETE', svcPath());
        io.out(`${positionals[1]}\n`);
        return 0;
      case 'service backends': {
        const svc = await api.call<ServiceInfo>('GET', svcPath());
        if (values.json) json(svc.backends);
        else
          io.out(
            `${table(
              ['NAME', 'ADDRESS', 'WEIGHT', 'HEALTH'],
              svc.backends.map((b) => [
                b.name ?? '',
                [b.address, b.address6].filter(Boolean).join(','),
                String(b.weight),
                b.health ?? '-',
              ]),
            )}\n`,
          );
        return 0;
      }
      case 'network create': {
        const body: Record<string, unknown> = { name: need(1, 'a network name'), driver: values.driver ?? 'bridge' };
        for (const s of values.subnet ?? []) body[s.includes(':') ? 'subnet6' : 'subnet'] = s;
        for (const g of values.gateway ?? []) body[isIP(g) === 6 ? 'gateway6' : 'gateway'] = g;
        if (body.subnet6) body.ipv6 = true;
        if (values.ipv6) body.ipv6 = true;
        if (values['ip-range']) body.ipRange = values['ip-range'];
        if (values.internal) body.internal = true;
        if (values.mtu !== undefined) body.mtu = Number(values.mtu);
        if (values.icc !== undefined) {
          if (values.icc !== 'true' && values.icc !== 'false')
            throw new ApiError('API_INVALID_ARGUMENT', '--icc=true|false');
          body.icc = values.icc === 'true';
        }
        body.options = Object.fromEntries(
          (values.opt ?? []).map((o) => {
            const eq = o.indexOf('=');
            if (eq < 1) throw new ApiError('API_INVALID_ARGUMENT', `--opt ${o}: expected KEY=VALUE`);
            return [o.slice(0, eq), o.slice(eq + 1)];
          }),
        );
        const n = await api.call<NetworkInfo>('POST', '/networks', body);
        io.out(`${n.id}\n`);
        return 0;
      }
      case 'network ls': {
        const nets = await api.call<NetworkInfo[]>('GET', '/networks');
        if (values.json) json(nets);
        else
          io.out(
            `${table(
              ['NETWORK ID', 'NAME', 'DRIVER', 'SUBNET', 'ENDPOINTS'],
              nets.map((n) => [
                n.id.slice(0, 12),
                n.name,
                n.driver,
                [n.subnet, n.subnet6].filter(Boolean).join(','),
                String(n.endpoints),
              ]),
            )}\n`,
          );
        return 0;
      }
      case 'network inspect':
        json(await api.call('GET', `/networks/${encodeURIComponent(need(1, 'a network name'))}`));
        return 0;
      case 'network rm':
        await api.call('DELETE', `/networks/${encodeURIComponent(need(1, 'a network name'))}`);
        io.out(`${positionals[1]}\n`);
        return 0;
      case 'attach': {
        if (!values.network) throw new ApiError('API_INVALID_ARGUMENT', '--network is required');
        const body: Record<string, unknown> = {
          sandbox: need(0, 'a sandbox (NETNS)'),
          network: values.network,
          aliases: values.alias ?? [],
          publish: values.publish ?? [],
        };
        for (const k of ['name', 'ip', 'ip6', 'mac', 'ifname', 'service'] as const) if (values[k]) body[k] = values[k];
        if (values.weight !== undefined) body.weight = Number(values.weight);
        if (values['default-route']) body.defaultRoute = true;
        const ep = await api.call<EndpointInfo>('POST', '/endpoints', body);
        if (values.json) json(ep);
        else io.out(`${ep.ifname} ${ep.ip}${ep.ip6 ? ` ${ep.ip6}` : ''} ${ep.mac}\n`);
        return 0;
      }
      case 'detach': {
        const q = new URLSearchParams({ sandbox: need(0, 'a sandbox (NETNS)') });
        if (values.network) q.set('network', values.network);
        const gone = await api.call<EndpointInfo[]>('DELETE', `/endpoints?${q}`);
        if (values.json) json(gone);
        else for (const ep of gone) io.out(`${ep.network} ${ep.ifname} ${ep.ip}\n`);
        return 0;
      }
      case 'ps': {
        const eps = await api.call<EndpointInfo[]>('GET', '/endpoints');
        if (values.json) json(eps);
        else
          io.out(
            `${table(
              ['NAME', 'NETWORK', 'INTERFACE', 'ADDRESS', 'MAC', 'SANDBOX'],
              eps.map((e) => [
                e.name ?? '',
                e.network,
                e.ifname,
                [e.ip, e.ip6].filter(Boolean).join(','),
                e.mac,
                e.sandbox,
              ]),
            )}\n`,
          );
        return 0;
      }
      case 'inspect':
        json(await api.call('GET', `/containers/${encodeURIComponent(need(0, 'a container name or sandbox'))}`));
        return 0;
      default:
        io.err(`cnmd: unknown command ${JSON.stringify([cmd, ...positionals.slice(0, 1)].join(' '))} (cnmd --help)\n`);
        return 2;
    }
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const code =
      typeof e.code !== 'string'
        ? 'API_INTERNAL'
        : e.code.startsWith('ERR_PARSE_ARGS')
          ? 'API_INVALID_ARGUMENT'
          : e.code;
    io.err(`cnmd: ${code}: ${e.message ?? String(err)}\n`);
    return 1;
  }
}
