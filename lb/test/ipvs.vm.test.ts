// The IPVS data plane against a real kernel (inside the IPVS VM: `npm run test:vm`). The VM's
// own namespace is the LB sandbox (lb/ cannot enter a namespace; the sidecar does that with
// IpvsDataPlane's `inNamespace`); a client and three backends live in netns behind it, with
// HTTP servers that answer their own names. IPVS is programmed only through IpvsDataPlane;
// ipvsadm and curl are the witnesses. Nothing persists after the VM powers off, but the suite
// removes what it made all the same.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IpvsDataPlane } from '../src/dataplanes/ipvs.js';
import { isLbError } from '../src/errors.js';
import { GenlSocket } from '../src/ipvs/genl-socket.js';
import { Ipvs } from '../src/ipvs/ipvs.js';
import type { VirtualService } from '../src/types.js';

const VIP = '10.9.100.1';
const MARK = 0x4000;
const BACKENDS = ['10.9.2.11', '10.9.2.12', '10.9.2.13'];
const sh = (script: string): string => execFileSync('bash', ['-euc', script], { encoding: 'utf8' });

const TOPOLOGY = `
for n in cli be1 be2 be3; do ip netns add $n; ip -n $n link set lo up; done
ip link add c0 netns cli type veth peer name l0
ip -n cli addr add 10.9.1.2/24 dev c0; ip -n cli link set c0 up; ip -n cli route add default via 10.9.1.1
ip addr add 10.9.1.1/24 dev l0; ip link set l0 up
ip link add cnmdbr0 type bridge; ip addr add 10.9.2.1/24 dev cnmdbr0; ip link set cnmdbr0 up
for i in 1 2 3; do
  ip link add e0 netns be$i type veth peer name b$i
  ip link set b$i master cnmdbr0 up
  ip -n be$i addr add 10.9.2.1$i/24 dev e0; ip -n be$i link set e0 up; ip -n be$i route add default via 10.9.2.1
done
# NAT-mode IPVS takes the first packet at LOCAL_IN: the VIP is a local address of the LB
ip addr add ${VIP}/32 dev lo
sysctl -qw net.ipv4.ip_forward=1
iptables-restore --noflush <<'RULES'
*mangle
-A PREROUTING -d ${VIP}/32 -p tcp -j MARK --set-xmark ${MARK}/0xffffffff
COMMIT
RULES
`;
const TEARDOWN = `
iptables -t mangle -D PREROUTING -d ${VIP}/32 -p tcp -j MARK --set-xmark ${MARK}/0xffffffff || true
ip addr del ${VIP}/32 dev lo || true
ip link del cnmdbr0 || true; ip link del l0 || true
for n in cli be1 be2 be3; do ip netns del $n || true; done
`;

// Each backend answers its name and closes, so that each request is a new IPVS connection.
const SERVER = `require('http').createServer((q, s) => { s.setHeader('connection', 'close'); s.end(process.argv[1] + '\\n'); }).listen(80, () => console.log('up'))`;

/** `n` requests from the client, in one curl, each on its own connection: who answered. */
function ask(n: number): string[] {
  const url = `http://${VIP}/`;
  const out = sh(`ip netns exec cli curl -s --max-time 5 -H 'Connection: close' ${Array(n).fill(url).join(' ')}`);
  return out.trim().split('\n');
}
const count = (names: string[]): Record<string, number> =>
  Object.fromEntries(['be1', 'be2', 'be3'].map((b) => [b, names.filter((x) => x === b).length]));
const ipvsadm = (): string => execFileSync('ipvsadm', ['-Ln'], { encoding: 'utf8' });

const svc = (over: Partial<VirtualService> = {}): VirtualService => ({
  mark: MARK,
  vip: VIP,
  ports: [],
  scheduler: 'rr',
  backends: BACKENDS.map((address) => ({ address, weight: 1 })),
  ...over,
});

describe('IpvsDataPlane on Linux IPVS', () => {
  let dp: IpvsDataPlane;
  const servers: ChildProcess[] = [];

  beforeAll(async () => {
    sh(TOPOLOGY);
    for (const i of [1, 2, 3]) {
      const p = spawn('ip', ['netns', 'exec', `be${i}`, process.execPath, '-e', SERVER, `be${i}`], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      servers.push(p);
      await new Promise((resolve, reject) => {
        p.stdout!.once('data', resolve);
        p.once('exit', reject);
      });
    }
    dp = await IpvsDataPlane.create({ inNamespace: (open) => open() });
  });

  afterAll(async () => {
    await dp?.reset();
    await dp?.close();
    for (const p of servers) p.kill();
    sh(TEARDOWN);
  });

  it('round robin over three backends (fwmark service, every port, NAT)', async () => {
    expect(await dp.apply([svc()])).toEqual({ added: 4, changed: 0, removed: 0 });
    const listing = ipvsadm();
    expect(listing).toMatch(new RegExp(`FWM  ${MARK} rr`));
    for (const b of BACKENDS) expect(listing).toMatch(new RegExp(`-> ${b}:0\\s+Masq\\s+1\\s`));
    expect(count(ask(6))).toEqual({ be1: 2, be2: 2, be3: 2 });
  });

  it('applying the same state again sends nothing', async () => {
    expect(await dp.apply([svc()])).toEqual({ added: 0, changed: 0, removed: 0 });
  });

  it('a scheduler change (SET_SERVICE) and weights: wrr 2:1:1', async () => {
    const weights = [2, 1, 1];
    const r = await dp.apply([
      svc({ scheduler: 'wrr', backends: BACKENDS.map((address, i) => ({ address, weight: weights[i]! })) }),
    ]);
    expect(r).toEqual({ added: 0, changed: 2, removed: 0 }); // the scheduler, one weight
    expect(ipvsadm()).toMatch(new RegExp(`FWM  ${MARK} wrr`));
    // wrr visits be1 twice per cycle of four: any eight requests are two whole cycles
    expect(count(ask(8))).toEqual({ be1: 4, be2: 2, be3: 2 });
  });

  it('weight 0 drains a backend: it gets no new connections', async () => {
    await dp.apply([svc({ backends: BACKENDS.map((address, i) => ({ address, weight: i === 2 ? 0 : 1 })) })]);
    expect(ipvsadm()).toMatch(/-> 10\.9\.2\.13:0\s+Masq\s+0\s/);
    expect(count(ask(6))).toEqual({ be1: 3, be2: 3, be3: 0 });
  });

  it('a removed backend is deleted from the service', async () => {
    const r = await dp.apply([svc({ backends: [{ address: BACKENDS[0]!, weight: 1 }] })]);
    expect(r).toEqual({ added: 0, changed: 0, removed: 2 });
    expect(ipvsadm()).not.toMatch(/10\.9\.2\.1[23]/);
    expect(count(ask(3))).toEqual({ be1: 3, be2: 0, be3: 0 });
  });

  it('read() is what the kernel holds', async () => {
    const want = [
      svc({ backends: [{ address: BACKENDS[1]!, weight: 5 }] }),
      {
        mark: MARK + 1,
        vip: 'fd00::100',
        ports: [{ proto: 'udp' as const, port: 53 }],
        scheduler: 'lc' as const,
        backends: [{ address: 'fd00::11', weight: 1 }],
      },
    ];
    await dp.apply(want);
    expect(ipvsadm()).toMatch(new RegExp(`FWM  ${MARK + 1} IPv6 lc\\s+-> \\[fd00::11\\]:0\\s+Masq\\s+1`));
    expect(await dp.read()).toEqual(want);
  });

  it('1,000 services programmed, listed and read back equal; then removed', async () => {
    const many = Array.from(
      { length: 1000 },
      (_, i): VirtualService => ({
        mark: 0x10000 + i, // clear of the marks other vm tests use (e2e: 256)
        vip: `10.8.${i >> 8}.${i & 255}`,
        ports: [],
        scheduler: i % 2 ? 'rr' : 'wrr',
        backends: [1, 2, 3].map((b) => ({ address: `10.7.${i >> 6}.${((i & 63) << 2) + b}`, weight: b })),
      }),
    );
    expect(await dp.apply(many)).toMatchObject({ added: 4000 });
    expect(ipvsadm().match(/^FWM /gm)).toHaveLength(1000);
    expect(await dp.read()).toEqual(many);
    // another data plane, with no memory of what was applied, reads the same from the kernel
    await using fresh = await IpvsDataPlane.create();
    const read = await fresh.read();
    expect(read.map(({ mark, scheduler, backends }) => ({ mark, scheduler, backends }))).toEqual(
      many.map(({ mark, scheduler, backends }) => ({ mark, scheduler, backends })),
    );
    expect(await dp.apply([])).toMatchObject({ removed: 4000 });
    expect(ipvsadm()).not.toMatch(/^FWM /m);
  });

  it('with ApplyHints: a change after a change, a service removed and added again, a restart, a refused request', async () => {
    const base = 0x20000; // clear of the marks above and of e2e's
    const one = (i: number, address: string, weight = 1): VirtualService => ({
      mark: base + i,
      vip: `10.6.0.${i + 1}`,
      ports: [],
      scheduler: 'rr',
      backends: [{ address, weight }],
    });
    const fwm = (mark: number) => new RegExp(`FWM  ${mark} rr\\s+-> ([\\d.]+):0\\s+Masq\\s+(\\d+)`);
    const held = (mark: number) => ipvsadm().match(fwm(mark))?.slice(1, 3).join('*');
    const desired = [one(0, '10.5.0.1'), one(1, '10.5.0.2'), one(2, '10.5.0.3')];
    await dp.apply(desired);
    const change = async (i: number, vs: VirtualService | undefined) => {
      if (vs) desired[i] = vs;
      else desired.splice(i, 1);
      return dp.apply(desired, vs ? { changed: [vs], removed: [] } : { changed: [], removed: [base + i] });
    };
    expect(await change(1, one(1, '10.5.0.9'))).toEqual({ added: 1, changed: 0, removed: 1 });
    expect(await change(1, one(1, '10.5.0.9', 0))).toEqual({ added: 0, changed: 1, removed: 0 });
    expect(held(base + 1)).toBe('10.5.0.9*0');
    expect(await change(2, undefined)).toEqual({ added: 0, changed: 0, removed: 2 });
    expect(ipvsadm()).not.toMatch(new RegExp(`FWM  ${base + 2} `));
    desired.push(one(2, '10.5.0.4'));
    expect(await dp.apply(desired, { changed: [desired[2]!], removed: [] })).toEqual({
      added: 2,
      changed: 0,
      removed: 0,
    });
    expect(held(base + 2)).toBe('10.5.0.4*1');

    // a restart: a new data plane reads the kernel back; it puts right what changed meanwhile
    execFileSync('ipvsadm', ['-e', '-f', `${base}`, '-r', '10.5.0.1', '-m', '-w', '7']);
    await using again = await IpvsDataPlane.create();
    desired[1] = one(1, '10.5.0.9', 1);
    await again.apply(desired, { changed: [desired[1]!], removed: [] });
    expect([held(base), held(base + 1), held(base + 2)]).toEqual(['10.5.0.1*1', '10.5.0.9*1', '10.5.0.4*1']);

    // a request the kernel refuses (its service deleted behind the data plane's back): nothing
    // of that apply is believed, and the next one reads the kernel and programs the service again
    execFileSync('ipvsadm', ['-D', '-f', `${base}`]);
    desired[0] = one(0, '10.5.0.1', 3);
    const err = await again.apply(desired, { changed: [desired[0]!], removed: [] }).catch((e: unknown) => e);
    expect(isLbError(err, 'LB_NETLINK') && (err as { errno?: number }).errno).toBe(3); // ESRCH
    desired[2] = one(2, '10.5.0.4', 2);
    await again.apply(desired, { changed: [desired[2]!], removed: [] });
    expect([held(base), held(base + 1), held(base + 2)]).toEqual(['10.5.0.1*3', '10.5.0.9*1', '10.5.0.4*2']);
    await again.apply([]);
    expect(await dp.read()).toEqual([]); // the first data plane sees they are gone, and trusts no hint
    expect(await dp.apply([])).toEqual({ added: 0, changed: 0, removed: 0 });
  });

  it('a kernel refusal is LB_NETLINK with its errno', async () => {
    const ipvs = await Ipvs.open(GenlSocket.open());
    try {
      const err = await ipvs.delService({ family: 4, fwmark: 0x7fff }).catch((e: unknown) => e);
      expect(isLbError(err, 'LB_NETLINK') && (err as { errno?: number }).errno).toBe(3); // ESRCH
      expect((await ipvs.info()).version).toBe('1.2.1');
    } finally {
      ipvs.close();
    }
  });
});
