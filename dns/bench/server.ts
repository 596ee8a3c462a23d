// One contender of the DNS benchmark, in its own process so that its CPU time is its own:
//   node dist/bench/server.js cnmd|stand-in [batch|dgram] [metrics]
// serves the 1,000 bench names on 127.0.0.1 (a free port), prints `ready <port>`, and runs
// until stdin closes (the harness holds it: if the harness dies, so does this) or SIGTERM.
// `cnmd` is the real DnsServer with no upstreams and forwarding off: it never queries anything.
// `metrics`: with its counters on (DnsServerOptions.metrics), read once a second as a scrape
// would read them (the sidecar's telemetry reads them when Prometheus scrapes, every 15 s or so).
import dgram from 'node:dgram';
import { once } from 'node:events';
import { DgramTransport, DnsServer } from '../src/index.js';
import type { UdpTransport } from '../src/transport.js';
import { BatchUdpTransport } from '../src/transports/batch.js';
import { benchNames, NETWORK } from './names.js';
import { standIn } from './stand-in.js';

const [mode = 'cnmd', via = 'batch', extra] = process.argv.slice(2);
const metrics = extra === 'metrics';

async function bind(): Promise<{ transport: UdpTransport; port: number }> {
  if (via === 'batch') {
    const transport = BatchUdpTransport.bind('127.0.0.1', 0);
    return { transport, port: transport.port };
  }
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return { transport: new DgramTransport(socket), port: socket.address().port };
}

const names = benchNames();
const { transport, port } = await bind();
let close: () => Promise<void>;
if (mode === 'stand-in') {
  transport.listen(standIn(names));
  close = () => transport.close();
} else if (mode === 'cnmd') {
  const server = new DnsServer({ upstreams: [], metrics });
  server.table.batch((tx) => {
    names.forEach(({ name, address }, i) => {
      tx.upsertEndpoint({ network: NETWORK, id: `bench${i}`, name, addresses: [address] });
    });
  });
  server.addSandbox('bench', { udp: transport, networks: [NETWORK], forward: false });
  await server.start();
  let read = 0;
  const scrape = metrics ? setInterval(() => (read += server.stats().views.length), 1000) : undefined;
  close = () => {
    clearInterval(scrape);
    return server.close();
  };
} else {
  throw new Error(`unknown contender ${mode}`);
}

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await close();
  process.exit(0);
}
process.once('SIGTERM', stop);
process.stdin.on('close', stop).resume();
process.stdout.write(`ready ${port}\n`);
