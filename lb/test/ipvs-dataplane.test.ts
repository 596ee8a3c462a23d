// IpvsDataPlane's difference, without a kernel: a fake generic netlink socket answers like
// IPVS (it keeps the services and destinations the requests describe) and records what was
// sent. The kernel-backed behaviour (traffic, drain) is in ipvs.vm.test.ts.
import { attr, nested, parseAttrs, str, u16, u32 } from '@cnmd/netutil';
import { describe, expect, it } from 'vitest';
import { IpvsDataPlane } from '../src/dataplanes/ipvs.js';
import { LbNetlinkError } from '../src/errors.js';
import { type GenlRequest, IpvsCmd } from '../src/ipvs/codec.js';
import type { GenlSocket } from '../src/ipvs/genl-socket.js';
import { decodeGenl } from '../src/ipvs/netlink.js';
import type { VirtualService } from '../src/types.js';

const FAMILY = 0x20;
const names = Object.fromEntries(Object.entries(IpvsCmd).map(([k, v]) => [v, k]));

/** Holds fwmark → scheduler and destination weights, as far as the requests say. */
class FakeIpvs {
  sent: string[] = [];
  services = new Map<number, { sched: string; dests: Map<string, number> }>();
  /** A request whose `sent` line this is fails with ENOMEM, and changes nothing. */
  failOn: string | undefined;

  async request(req: GenlRequest): Promise<Buffer[]> {
    if (req.type === 0x10) return [Buffer.concat([Buffer.from([1, 2, 0, 0]), u16(1, FAMILY)])]; // NEWFAMILY
    const g = decodeGenl(req.payload);
    const svc = parseAttrs(g.attrs.get(1) ?? Buffer.alloc(0));
    const dest = parseAttrs(g.attrs.get(2) ?? Buffer.alloc(0));
    const mark = svc.get(5)?.readUInt32LE(0) ?? 0;
    const addr = dest.get(1)?.subarray(0, 4).join('.') ?? '';
    const weight = dest.get(4)?.readUInt32LE(0) ?? 0;
    const sched = svc.get(6)?.toString('utf8').replace(/\0.*/, '') ?? '';
    const line = `${names[g.cmd]} ${mark}${addr ? ` ${addr}` : ''}`;
    this.sent.push(line);
    if (line === this.failOn) throw new LbNetlinkError(`${line}: ENOMEM`, 12);
    const s = this.services.get(mark);
    switch (g.cmd) {
      case IpvsCmd.GET_SERVICE:
        return [...this.services].map(([m, x]) =>
          Buffer.concat([Buffer.from([1, 1, 0, 0]), nested(1, u16(1, 2), u32(5, m), str(6, x.sched))]),
        );
      case IpvsCmd.GET_DEST:
        return [...(s?.dests ?? [])].map(([a, w]) =>
          Buffer.concat([
            Buffer.from([5, 1, 0, 0]),
            nested(
              2,
              attr(1, Buffer.concat([Buffer.from(a.split('.').map(Number)), Buffer.alloc(12)])),
              attr(2, Buffer.alloc(2)),
              u32(4, w),
            ),
          ]),
        );
      case IpvsCmd.NEW_SERVICE:
        this.services.set(mark, { sched, dests: new Map() });
        return [];
      case IpvsCmd.SET_SERVICE:
        s!.sched = sched;
        return [];
      case IpvsCmd.DEL_SERVICE:
        this.services.delete(mark);
        return [];
      case IpvsCmd.NEW_DEST:
      case IpvsCmd.SET_DEST:
        s!.dests.set(addr, weight);
        return [];
      case IpvsCmd.DEL_DEST:
        s!.dests.delete(addr);
        return [];
    }
    throw new Error(`unexpected ${names[g.cmd]}`);
  }
  async requestAll(reqs: GenlRequest[]): Promise<(Error | undefined)[]> {
    const out: (Error | undefined)[] = [];
    for (const r of reqs)
      out.push(
        await this.request(r).then(
          () => undefined,
          (e: Error) => e,
        ),
      );
    return out;
  }
  close(): void {}
}

async function setup(): Promise<[IpvsDataPlane, FakeIpvs]> {
  const fake = new FakeIpvs();
  const dp = await IpvsDataPlane.create({ inNamespace: () => fake as unknown as GenlSocket as never });
  return [dp, fake];
}

const vs = (
  mark: number,
  backends: [string, number][],
  scheduler: VirtualService['scheduler'] = 'rr',
): VirtualService => ({
  mark,
  vip: `10.9.0.${mark - 255}`,
  ports: [],
  scheduler,
  backends: backends.map(([address, weight]) => ({ address, weight })),
});

describe('IpvsDataPlane sends only the difference', () => {
  it.each<[string, VirtualService[], VirtualService[], string[], [number, number, number]]>([
    ['nothing changed', [vs(256, [['10.1.0.1', 1]])], [vs(256, [['10.1.0.1', 1]])], [], [0, 0, 0]],
    [
      'a backend added',
      [vs(256, [['10.1.0.1', 1]])],
      [
        vs(256, [
          ['10.1.0.1', 1],
          ['10.1.0.2', 1],
        ]),
      ],
      ['NEW_DEST 256 10.1.0.2'],
      [1, 0, 0],
    ],
    [
      'a drain (weight 0)',
      [vs(256, [['10.1.0.1', 1]])],
      [vs(256, [['10.1.0.1', 0]])],
      ['SET_DEST 256 10.1.0.1'],
      [0, 1, 0],
    ],
    [
      'a backend removed',
      [
        vs(256, [
          ['10.1.0.1', 1],
          ['10.1.0.2', 1],
        ]),
      ],
      [vs(256, [['10.1.0.2', 1]])],
      ['DEL_DEST 256 10.1.0.1'],
      [0, 0, 1],
    ],
    [
      'a scheduler change',
      [vs(256, [['10.1.0.1', 1]])],
      [vs(256, [['10.1.0.1', 1]], 'wrr')],
      ['SET_SERVICE 256'],
      [0, 1, 0],
    ],
    ['a service added', [], [vs(257, [['10.1.0.3', 2]])], ['NEW_SERVICE 257', 'NEW_DEST 257 10.1.0.3'], [2, 0, 0]],
    [
      'a service removed',
      [vs(256, [['10.1.0.1', 1]]), vs(257, [['10.1.0.3', 1]])],
      [vs(257, [['10.1.0.3', 1]])],
      ['DEL_SERVICE 256'],
      [0, 0, 2],
    ],
  ])('%s', async (_name, before, after, sent, [added, changed, removed]) => {
    const [dp, fake] = await setup();
    await dp.apply(before);
    fake.sent = [];
    expect(await dp.apply(after)).toEqual({ added, changed, removed });
    expect(fake.sent).toEqual(sent);
    expect(await dp.read()).toEqual(
      after.map((s) => ({ ...s, backends: [...s.backends].sort((a, b) => a.address.localeCompare(b.address)) })),
    );
  });

  it('a backend replaced in place in the same desired array is noticed', async () => {
    const [dp, fake] = await setup();
    const desired = [vs(256, [['10.1.0.1', 1]]), vs(257, [['10.1.0.2', 1]])];
    await dp.apply(desired);
    fake.sent = [];
    desired[1]!.backends[0] = { address: '10.1.0.3', weight: 1 };
    desired[0]!.backends[0]!.weight = 0;
    expect(await dp.apply(desired)).toEqual({ added: 1, changed: 1, removed: 1 });
    expect(fake.sent).toEqual(['SET_DEST 256 10.1.0.1', 'DEL_DEST 257 10.1.0.2', 'NEW_DEST 257 10.1.0.3']);
  });

  it('after read() shows the kernel changed behind its back, apply() puts it right', async () => {
    const [dp, fake] = await setup();
    const desired = [vs(256, [['10.1.0.1', 1]])];
    await dp.apply(desired);
    fake.services.get(256)!.dests.set('10.1.0.1', 7);
    await dp.read();
    fake.sent = [];
    expect(await dp.apply(desired)).toEqual({ added: 0, changed: 1, removed: 0 });
    expect(fake.sent).toEqual(['SET_DEST 256 10.1.0.1']);
  });

  it('the first apply reads the kernel and removes fwmark services nobody asked for; never a flush', async () => {
    const [dp, fake] = await setup();
    fake.services.set(999, { sched: 'rr', dests: new Map([['10.1.0.9', 1]]) });
    await dp.apply([vs(256, [['10.1.0.1', 1]])]);
    expect(fake.sent).toEqual([
      'GET_SERVICE 0',
      'GET_DEST 999',
      'DEL_SERVICE 999',
      'NEW_SERVICE 256',
      'NEW_DEST 256 10.1.0.1',
    ]);
    expect(fake.sent.some((s) => s.startsWith('FLUSH'))).toBe(false);
  });

  it.each<[string, VirtualService[], string]>([
    ['a duplicate mark', [vs(256, []), vs(256, [])], 'LB_INVALID_ARGUMENT'],
    ['a bad scheduler', [{ ...vs(256, []), scheduler: 'dh' as never }], 'LB_INVALID_SCHEDULER'],
    ['a backend of the other family', [vs(256, [['fd00::1', 1]])], 'LB_INVALID_ARGUMENT'],
    [
      'a backend twice',
      [
        vs(256, [
          ['10.1.0.1', 1],
          ['10.1.0.1', 2],
        ]),
      ],
      'LB_INVALID_ARGUMENT',
    ],
    ['a negative weight', [vs(256, [['10.1.0.1', -1]])], 'LB_INVALID_ARGUMENT'],
    [
      'two ports mapped',
      [
        {
          ...vs(256, []),
          ports: [
            { proto: 'tcp', port: 80, targetPort: 8080 },
            { proto: 'tcp', port: 81, targetPort: 8081 },
          ],
        },
      ],
      'LB_INVALID_ARGUMENT',
    ],
  ])('%s is refused before anything is sent', async (_name, desired, code) => {
    const [dp, fake] = await setup();
    await dp.apply([]);
    fake.sent = [];
    await expect(dp.apply(desired)).rejects.toMatchObject({ code });
    expect(fake.sent).toEqual([]);
  });

  it('after close: LB_CLOSED; close twice is fine', async () => {
    const [dp] = await setup();
    await dp.close();
    await dp.close();
    await expect(dp.apply([])).rejects.toMatchObject({ code: 'LB_CLOSED' });
  });
});

/** What the fake kernel holds, as read() would give it back (VIPs and ports aside). */
const kernel = (fake: FakeIpvs) =>
  [...fake.services]
    .sort(([a], [b]) => a - b)
    .map(
      ([mark, s]) =>
        `${mark} ${s.sched} ${[...s.dests]
          .map(([a, w]) => `${a}*${w}`)
          .sort()
          .join(' ')}`,
    );
const expected = (desired: VirtualService[]) =>
  [...desired]
    .sort((a, b) => a.mark - b.mark)
    .map(
      (s) =>
        `${s.mark} ${s.scheduler} ${s.backends
          .map((b) => `${b.address}*${b.weight}`)
          .sort()
          .join(' ')}`,
    );

describe('IpvsDataPlane with an ApplyHint looks only at what it names', () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => vs(256 + i, [[`10.2.${i >> 8}.${i & 255}`, 1]]));

  it('a change after a change: one request each, nothing else looked at', async () => {
    const [dp, fake] = await setup();
    const desired = many(50);
    await dp.apply(desired);
    fake.sent = [];
    desired[3] = vs(259, [['10.3.0.1', 1]]);
    expect(await dp.apply(desired, { changed: [desired[3]!], removed: [] })).toEqual({
      added: 1,
      changed: 0,
      removed: 1,
    });
    desired[3] = vs(259, [['10.3.0.1', 0]]);
    expect(await dp.apply(desired, { changed: [desired[3]!], removed: [] })).toEqual({
      added: 0,
      changed: 1,
      removed: 0,
    });
    expect(fake.sent).toEqual(['DEL_DEST 259 10.2.0.3', 'NEW_DEST 259 10.3.0.1', 'SET_DEST 259 10.3.0.1']);
    expect(kernel(fake)).toEqual(expected(desired));
  });

  it('trusts the hint: a change it does not name is not sent (the caller vouches for the rest)', async () => {
    const [dp, fake] = await setup();
    const desired = many(3);
    await dp.apply(desired);
    fake.sent = [];
    desired[0] = vs(256, [['10.3.0.1', 1]]);
    desired[1] = vs(257, [['10.3.0.2', 1]]);
    await dp.apply(desired, { changed: [desired[1]!], removed: [] });
    expect(fake.sent).toEqual(['DEL_DEST 257 10.2.0.1', 'NEW_DEST 257 10.3.0.2']);
  });

  it('a service removed and added again', async () => {
    const [dp, fake] = await setup();
    const desired = many(3);
    await dp.apply(desired);
    fake.sent = [];
    const [gone] = desired.splice(1, 1);
    expect(await dp.apply(desired, { changed: [], removed: [257] })).toEqual({ added: 0, changed: 0, removed: 2 });
    desired.push(vs(257, [['10.3.0.7', 3]], 'wrr'));
    expect(await dp.apply(desired, { changed: [desired[2]!], removed: [] })).toEqual({
      added: 2,
      changed: 0,
      removed: 0,
    });
    expect(fake.sent).toEqual(['DEL_SERVICE 257', 'NEW_SERVICE 257', 'NEW_DEST 257 10.3.0.7']);
    expect(kernel(fake)).toEqual(expected(desired));
    expect(gone?.mark).toBe(257);
  });

  it('a hint that does not add up to the desired state is not trusted: everything is compared', async () => {
    const [dp, fake] = await setup();
    const desired = many(3);
    await dp.apply(desired);
    fake.sent = [];
    desired.push(vs(300, [['10.3.0.9', 1]]));
    await dp.apply(desired, { changed: [], removed: [] });
    expect(fake.sent).toEqual(['NEW_SERVICE 300', 'NEW_DEST 300 10.3.0.9']);
    expect(kernel(fake)).toEqual(expected(desired));
  });

  it('a restart reads the kernel back and compares everything before it trusts a hint', async () => {
    const [dp, fake] = await setup();
    const desired = many(3);
    await dp.apply(desired);
    await dp.close();
    fake.services.get(258)!.dests.set('10.2.0.2', 9); // changed while no data plane ran
    const again = await IpvsDataPlane.create({ inNamespace: () => fake as unknown as GenlSocket as never });
    fake.sent = [];
    desired[0] = vs(256, [['10.3.0.1', 1]]);
    await again.apply(desired, { changed: [desired[0]!], removed: [] });
    expect(fake.sent).toEqual([
      'GET_SERVICE 0',
      'GET_DEST 256',
      'GET_DEST 257',
      'GET_DEST 258',
      'DEL_DEST 256 10.2.0.0',
      'NEW_DEST 256 10.3.0.1',
      'SET_DEST 258 10.2.0.2',
    ]);
    expect(kernel(fake)).toEqual(expected(desired));
    fake.sent = [];
    desired[1] = vs(257, [['10.2.0.1', 0]]);
    await again.apply(desired, { changed: [desired[1]!], removed: [] });
    expect(fake.sent).toEqual(['SET_DEST 257 10.2.0.1']); // trusted again
  });

  it('a failed request: nothing is believed applied; the next apply reads the kernel and puts it right', async () => {
    const [dp, fake] = await setup();
    const desired = many(3);
    await dp.apply(desired);
    fake.sent = [];
    fake.failOn = 'NEW_DEST 257 10.3.0.2';
    const before = desired[1]!;
    desired[1] = vs(257, [['10.3.0.2', 1]]);
    await expect(dp.apply(desired, { changed: [desired[1]!], removed: [] })).rejects.toMatchObject({ errno: 12 });
    // the DEL_DEST went through: the kernel has neither the old backend nor the new one
    expect(kernel(fake)).toContain('257 rr ');
    fake.failOn = undefined;
    fake.sent = [];
    // the caller (a LoadBalancer) did not commit the change: it hints relative to `before`, and
    // names only another service; the data plane must still bring 257 to what is desired
    desired[2] = vs(258, [['10.3.0.3', 1]]);
    await dp.apply(desired, { changed: [desired[2]!], removed: [] });
    expect(fake.sent.slice(0, 4)).toEqual(['GET_SERVICE 0', 'GET_DEST 256', 'GET_DEST 257', 'GET_DEST 258']);
    expect(fake.sent).toContain('NEW_DEST 257 10.3.0.2');
    expect(kernel(fake)).toEqual(expected(desired));
    expect(before.mark).toBe(257);
  });

  it('a read that finds the kernel changed behind its back: the next hinted apply compares everything', async () => {
    const [dp, fake] = await setup();
    const desired = many(3);
    await dp.apply(desired);
    await dp.read();
    fake.sent = [];
    desired[0] = vs(256, [['10.2.0.0', 0]]);
    await dp.apply(desired, { changed: [desired[0]!], removed: [] });
    expect(fake.sent).toEqual(['SET_DEST 256 10.2.0.0']); // a read that found nothing new keeps the trust
    fake.services.get(257)!.dests.clear();
    const back = await dp.read();
    expect(back.find((s) => s.mark === 257)).toMatchObject({ vip: '10.9.0.2', backends: [] });
    fake.sent = [];
    desired[2] = vs(258, [['10.2.0.2', 5]]);
    await dp.apply(desired, { changed: [desired[2]!], removed: [] });
    expect(fake.sent).toEqual(['NEW_DEST 257 10.2.0.1', 'SET_DEST 258 10.2.0.2']);
    expect(kernel(fake)).toEqual(expected(desired));
  });
});
