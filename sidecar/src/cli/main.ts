// `cnmd`: the daemon and a Docker-style CLI that talks to it over the admin socket. Each command
// declares its own options (an option another command takes is refused, not ignored), numbers
// are checked as numbers, and an option given twice where one is meant is refused.
import { parseArgs } from 'node:util';
import { ApiClient } from '../api/client.js';
import type { Io } from '../io.js';
import { bad, COMMANDS, str } from './commands.js';

export const DEFAULT_SOCKET = '/run/cnmd/cnmd.sock';

const USAGE = `Usage: cnmd COMMAND [OPTIONS]

Commands:
  daemon                         run the daemon (see cnmd daemon --help; src/entry.ts)
  network create NAME [OPTIONS]  create a network
      --driver bridge|macvlan|overlay  (bridge; overlay: between the hosts of a cluster)
      --subnet CIDR                once per family (an IPv6 subnet too)
      --gateway IP                 once per family
      --ip-range CIDR              where dynamic addresses come from
      --ipv6                       give the network an IPv6 subnet as well
      --internal                   no traffic leaves the network
      --scope local|global         global: the cluster's, on every host (cnmd daemon --cluster)
      --mtu N                      (1500)
      --opt KEY=VALUE              driver options: parent=IFACE for macvlan; vni=N, vxlan-port=N,
                                   encrypted (IPsec between hosts), key-rotation=12h for overlay
      --icc=false                  containers on the network cannot reach each other
  network ls | inspect NAME | rm NAME
  network rotate-key NAME        an encrypted network's new key, now; returns once every host uses it
  attach NETNS --network NET [--name NAME] [--alias A]... [--ip IP] [--ip6 IP] [--mac MAC]
         [--ifname IF] [--publish [HOSTIP:]HOSTPORT:PORT[/PROTO]]... [--service NAME [--weight N]]
         [--default-route]            this network's gateway becomes the default route
         [--hostname NAME] [--dns IP]... [--dns-search DOMAIN]... [--dns-option OPT]...
                                 the sandbox's own resolver settings, as docker run's
                                 NETNS: /proc/PID/ns/net, a Docker SandboxKey, or an ip-netns name
  service create NAME --network NET [--vip IP [--vip IPV6]] [--port [NAME=]PORT[:TARGET][/PROTO]]...
         [--scheduler rr|wrr|lc|sh] [--mode vip|dnsrr] [--publish [HOSTIP:]HOSTPORT:PORT[/PROTO]]...
         [--health tcp:PORT|http:PORT[/PATH][,interval=5s][,timeout=1s][,rise=2][,fall=3]]
  service ls | inspect NAME | rm NAME | backends NAME   [--network NET when the name is on several]
  cluster status                 the hosts of the cluster, their heartbeats, the NATS connection
  detach NETNS [--network NET]
  ps                             list endpoints
  inspect NAME|NETNS             a container's endpoints

Every read command takes --json. Global: --socket PATH (default $CNMD_SOCKET or ${DEFAULT_SOCKET}).
`;

/** Runs one CLI invocation; returns the exit code. */
export async function main(argv: string[], io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // --socket may come before the command too, as `docker -H` does.
  const lead = argv[0] === '--socket' ? argv.slice(0, 2) : argv[0]?.startsWith('--socket=') ? argv.slice(0, 1) : [];
  const [cmd, ...tail] = argv.slice(lead.length);
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    io.out(USAGE);
    return cmd ? 0 : 2;
  }
  try {
    const grouped = cmd === 'network' || cmd === 'service' || cmd === 'cluster';
    const name = grouped ? `${cmd} ${tail[0] ?? ''}` : cmd;
    const command = COMMANDS[name];
    if (!command) {
      io.err(`cnmd: unknown command ${JSON.stringify(name.trim())} (cnmd --help)\n`);
      return 2;
    }
    const { values, positionals } = parseArgs({
      args: [...(grouped ? tail.slice(1) : tail), ...lead],
      allowPositionals: true,
      strict: true,
      options: { ...command.options, socket: str, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    for (const [i, what] of command.args.entries()) {
      if (!positionals[i]) throw bad(`${what} is required (cnmd --help)`);
    }
    if (positionals.length > command.args.length) {
      throw bad(`${name}: unexpected argument ${JSON.stringify(positionals[command.args.length])}`);
    }
    const socket = (values.socket as string | undefined) ?? env.CNMD_SOCKET ?? DEFAULT_SOCKET;
    await command.run({ api: new ApiClient(socket), values, args: positionals, io });
    return 0;
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
