import { expect, it } from 'vitest';
import { MAX_SLOTS, slots } from '../src/slots.js';
import type { Scheduler, VirtualService } from '../src/types.js';

const vs = (scheduler: Scheduler, weights: number[]): VirtualService => ({
  mark: 256,
  vip: '10.0.0.10',
  ports: [],
  scheduler,
  backends: weights.map((weight, i) => ({ address: `10.0.0.${i + 2}`, weight })),
});

it.each<[Scheduler, number[], string]>([
  ['rr', [1, 5, 1], '234'],
  ['rr', [1, 0, 1], '24'],
  ['lc', [1, 1], '23'],
  ['wrr', [3, 1], '2232'],
  ['wrr', [2, 2, 2], '234'],
  ['wrr', [5, 0, 5], '24'],
  ['sh', [1, 2], '323'],
  ['wrr', [0, 0], ''],
])('%s with weights %j gives slots %s', (s, w, want) => {
  expect(
    slots(vs(s, w))
      .map((a) => a.split('.')[3])
      .join(''),
  ).toBe(want);
});

it('scales large weights to at most MAX_SLOTS, each live backend keeping one', () => {
  const s = slots(vs('wrr', [1000, 999, 1]));
  expect(s.length).toBeLessThanOrEqual(MAX_SLOTS);
  expect(s.filter((a) => a === '10.0.0.4')).toHaveLength(1);
  const a = s.filter((x) => x === '10.0.0.2').length;
  const b = s.filter((x) => x === '10.0.0.3').length;
  expect(Math.abs(a - b)).toBeLessThanOrEqual(1);
});
