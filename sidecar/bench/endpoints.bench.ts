// npm run bench -w @cnmd/sidecar [-- --kernel netlink|iproute|ip-batch] [--endpoints N] [--sandboxes M]
//
// Creates, configures and deletes N endpoints (default 200) one after another, as containers
// start and stop, spread over M sandbox namespaces (default 10: eth0, eth1... in each), with a
// "host" namespace holding the bridge. Each endpoint: a veth made with its end in the sandbox
// (master br0, MTU, MAC), that end brought up, arp_notify, an address, a default route on eth0;
// then deleted. Kernels: `netlink` (rtnetlink sockets, a fresh one per sandbox and endpoint),
// `iproute` (an `ip` process per call), `ip-batch` (the fewest processes `ip` allows: one
// `ip -batch` per namespace and endpoint). Everything lives in namespaces made here and removed
// at the end, pass or fail. Prints one JSON line. Run as root; time the whole process from
// outside (/usr/bin/time -v) or read createMs/deleteMs.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs, promisify } from 'node:util';
import { IprouteKernel, type Kernel, NetlinkKernel } from '../src/index.js';
import { writeIpv4Conf } from '../src/internal.js';
import { netnsMountGuard } from './netns-mount.js';

const exec = promisify(execFile);
const { values } = parseArgs({
  options: {
    kernel: { type: 'string', default: 'netlink' },
    endpoints: { type: 'string', default: '200' },
    sandboxes: { type: 'string', default: '10' },
  },
});
const N = Number(values.endpoints);
const M = Number(values.sandboxes);
const tag = `cnmd-bench-${randomBytes(3).toString('hex')}`;
const host = `${tag}-h`;
const sandboxes = Array.from({ length: M }, (_, i) => `${tag}-s${i}`);
const path = (name: string) => `/run/netns/${name}`;

interface Endpoint {
  hostEnd: string;
  sandbox: string;
  ifname: string;
  mac: string;
  cidr: string;
}

const endpoints: Endpoint[] = Array.from({ length: N }, (_, i) => ({
  hostEnd: `ve${i}`,
  sandbox: sandboxes[i % M]!,
  ifname: `eth${Math.floor(i / M)}`,
  mac: `02:42:0a:0b:${((i + 2) >> 8).toString(16).padStart(2, '0')}:${((i + 2) & 255).toString(16).padStart(2, '0')}`,
  cidr: `10.11.${(i + 2) >> 8}.${(i + 2) & 255}/16`,
}));

/** The operations measured, for one kernel. */
interface Way {
  create(e: Endpoint): Promise<void>;
  remove(e: Endpoint): Promise<void>;
}

function viaKernel(k: Kernel): Way {
  return {
    async create(e) {
      await using h = await k.open(path(host));
      await h.addVeth({
        name: e.hostEnd,
        master: 'br0',
        up: true,
        mtu: 1500,
        peer: { name: e.ifname, netns: path(e.sandbox), mac: e.mac, mtu: 1500 },
      });
      await using s = await k.open(path(e.sandbox));
      await s.setLink(e.ifname, { up: true });
      await s.setArpNotify(e.ifname, true);
      await s.addAddress(e.ifname, e.cidr);
      if (e.ifname === 'eth0') await s.addRoute({ dst: 'default', gateway: '10.11.0.1' });
    },
    async remove(e) {
      await using h = await k.open(path(host));
      await h.deleteLink(e.hostEnd);
    },
  };
}

const batch = (ns: string, lines: string[]) =>
  new Promise<void>((resolve, reject) => {
    const child = execFile('ip', ['-n', ns, '-batch', '-'], (err) => (err ? reject(err) : resolve()));
    child.stdin?.end(`${lines.join('\n')}\n`);
  });

const ipBatch: Way = {
  async create(e) {
    await batch(host, [
      `link add ${e.hostEnd} mtu 1500 master br0 up type veth peer name ${e.ifname} netns ${path(e.sandbox)} address ${e.mac} mtu 1500`,
    ]);
    writeIpv4Conf(path(e.sandbox), e.ifname, 'arp_notify', '1');
    const route = e.ifname === 'eth0' ? ['route add default via 10.11.0.1'] : [];
    await batch(e.sandbox, [`link set ${e.ifname} up`, `addr add ${e.cidr} dev ${e.ifname}`, ...route]);
  },
  async remove(e) {
    await batch(host, [`link del ${e.hostEnd}`]);
  },
};

const ways: Record<string, () => Way> = {
  netlink: () => viaKernel(new NetlinkKernel()),
  iproute: () => viaKernel(new IprouteKernel()),
  'ip-batch': () => ipBatch,
};

async function main(): Promise<void> {
  const make = ways[values.kernel];
  if (!make) throw new Error(`--kernel: one of ${Object.keys(ways).join(', ')}`);
  const way = make();
  const made: string[] = [];
  const releaseNetnsMount = await netnsMountGuard();
  try {
    for (const ns of [host, ...sandboxes]) {
      await exec('ip', ['netns', 'add', ns]);
      made.push(ns);
    }
    await exec('ip', ['-n', host, 'link', 'add', 'br0', 'up', 'type', 'bridge']);
    await exec('ip', ['-n', host, 'addr', 'add', '10.11.0.1/16', 'dev', 'br0']);
    const t0 = performance.now();
    for (const e of endpoints) await way.create(e);
    const t1 = performance.now();
    for (const e of endpoints) await way.remove(e);
    const t2 = performance.now();
    const left = (await exec('ip', ['-n', host, '-o', 'link', 'show'])).stdout.trim().split('\n').length;
    if (left !== 2) throw new Error(`expected lo and br0 in the host namespace, found ${left} links`);
    const createMs = Math.round(t1 - t0);
    const deleteMs = Math.round(t2 - t1);
    console.log(
      JSON.stringify({
        kernel: values.kernel,
        endpoints: N,
        sandboxes: M,
        createMs,
        deleteMs,
        msPerEndpoint: (t2 - t0) / N,
      }),
    );
  } finally {
    for (const ns of made) await exec('ip', ['netns', 'delete', ns]);
    await releaseNetnsMount();
  }
}

await main();
