// The ApplyHint (types.ts) in the nftables data plane and the memory one: a change names what
// it touched and only that is diffed; after a failed apply no hint is trusted. IPVS's side is in
// ipvs-dataplane.test.ts; the LoadBalancer's hints are checked by MemoryDataPlane in every
// load-balancer test.
import { describe, expect, it } from 'vitest';
import { MemoryDataPlane } from '../src/dataplanes/memory.js';
import { desiredState, diff } from '../src/dataplanes/nft-diff.js';
import { NftablesDataPlane } from '../src/dataplanes/nftables.js';
import type { VirtualService } from '../src/types.js';

const vs = (mark: number, addresses: string[], weight = 1): VirtualService => ({
  mark,
  vip: `10.9.0.${mark - 255}`,
  ports: [{ proto: 'tcp', port: 80 }],
  scheduler: 'rr',
  backends: addresses.map((address) => ({ address, weight })),
});
const three = () => [vs(256, ['10.1.0.1']), vs(257, ['10.1.0.2']), vs(258, ['10.1.0.3'])];

describe('nft diff of what a hint names', () => {
  it('diffs the changed services only, deletes the removed ones, and counts the services after', () => {
    const held = desiredState(three());
    const d = diff(held, [vs(258, ['10.1.0.4'])], { removed: [256] });
    expect(d.lines).toEqual([
      'delete element inet cnmd_lb slots4 { 258 . 0, 256 . 0 }',
      'delete element inet cnmd_lb svc4 { 10.9.0.1 . tcp . 80 }',
      'delete element inet cnmd_lb counts { 256 }',
      'add element inet cnmd_lb slots4 { 258 . 0 : 10.1.0.4 }',
    ]);
    expect(d.size).toBe(2);
    expect(diff(held, [vs(300, ['10.1.0.9'])], { removed: [] }).size).toBe(4);
  });
});

/** nft -f - recorded; `list` answers that there is no table yet; `fail` refuses the next script. */
function fakeNft() {
  const scripts: string[] = [];
  const state = { fail: false };
  const exec = async (_cmd: string, args: string[], input?: string): Promise<string> => {
    if (args[1] === 'list') throw new Error('Error: No such file or directory');
    if (state.fail) {
      state.fail = false;
      throw new Error('Error: Could not process rule');
    }
    scripts.push(input ?? '');
    return '';
  };
  return { exec, scripts, state };
}
const elementsOf = (script: string) => script.split('\n').filter((l) => l.includes(' element '));

describe('NftablesDataPlane with an ApplyHint', () => {
  it('sends what the hint names; after a refused transaction it compares everything again', async () => {
    const nft = fakeNft();
    const dp = new NftablesDataPlane({ exec: nft.exec });
    const desired = three();
    await dp.apply(desired);
    desired[0] = vs(256, ['10.1.0.1'], 0);
    expect(await dp.apply(desired, { changed: [desired[0]!], removed: [] })).toMatchObject({ removed: 2 });
    expect(elementsOf(nft.scripts.at(-1)!).join('\n')).toMatch(/256/);
    expect(elementsOf(nft.scripts.at(-1)!).join('\n')).not.toMatch(/257|258/);

    // refused: the caller did not commit its change to 257 either, yet keeps it in its state
    // (as the LoadBalancer's health checks do), and names only 258 next time
    desired[1] = vs(257, ['10.1.0.7']);
    nft.state.fail = true;
    await expect(dp.apply(desired, { changed: [desired[1]!], removed: [] })).rejects.toMatchObject({
      code: 'LB_NFT',
    });
    desired[2] = vs(258, ['10.1.0.3'], 0);
    await dp.apply(desired, { changed: [desired[2]!], removed: [] });
    const sent = elementsOf(nft.scripts.at(-1)!).join('\n');
    expect(sent).toContain('257 . 0 : 10.1.0.7');
    expect(sent).toContain('weights4 { 258 . 10.1.0.3 : 0 }');
    await dp.close();
  });

  it('a hint that does not add up to the desired state is not trusted', async () => {
    const nft = fakeNft();
    const dp = new NftablesDataPlane({ exec: nft.exec });
    const desired = three();
    await dp.apply(desired);
    desired.push(vs(259, ['10.1.0.9']));
    await dp.apply(desired, { changed: [], removed: [] });
    expect(elementsOf(nft.scripts.at(-1)!).join('\n')).toContain('259 . 0 : 10.1.0.9');
    await dp.close();
  });
});

describe('MemoryDataPlane checks the hints it is given', () => {
  it.each<[string, VirtualService[], { changed: VirtualService[]; removed: number[] }]>([
    ['a change not named', [vs(256, ['10.1.0.5']), ...three().slice(1)], { changed: [], removed: [] }],
    ['a service gone not named', three().slice(1), { changed: [], removed: [] }],
    ['a new service not named', [...three(), vs(259, ['10.1.0.9'])], { changed: [], removed: [] }],
  ])('refuses %s', async (_name, desired, hint) => {
    const dp = new MemoryDataPlane();
    await dp.apply(three());
    await expect(dp.apply(desired, hint)).rejects.toThrow(/ApplyHint/);
  });

  it('takes a right one', async () => {
    const dp = new MemoryDataPlane();
    await dp.apply(three());
    const next = [vs(256, ['10.1.0.5']), three()[2]!];
    expect(await dp.apply(next, { changed: [next[0]!], removed: [257] })).toEqual({ added: 1, changed: 0, removed: 3 });
  });
});
