// A bucket's view: a snapshot, then changes; a second snapshot (a resync) tells only what differs.
import { describe, expect, it } from 'vitest';
import { BucketView } from '../../src/cluster/view.js';

function view() {
  const told: string[] = [];
  const v = new BucketView<{ n: number }>(
    (_, text) => {
      const n = Number(text);
      return Number.isInteger(n) ? { n } : { error: 'not a number' };
    },
    {
      change: (key, now, old) => told.push(`${key}:${old?.n ?? '-'}>${now?.n ?? '-'}`),
      refused: (key, why) => told.push(`refused ${key}: ${why}`),
    },
  );
  return { v, told };
}

describe('BucketView', () => {
  it('tells what came, changed and went', () => {
    const { v, told } = view();
    v.beginSnapshot();
    v.apply({ key: 'a', value: '1', revision: 1 });
    v.apply({ key: 'b', value: '2', revision: 2 });
    v.endSnapshot();
    v.apply({ key: 'a', value: '3', revision: 3 });
    v.apply({ key: 'b', value: undefined, revision: 4 });
    expect(told).toEqual(['a:->1', 'b:->2', 'a:1>3', 'b:2>-']);
  });

  it('a new snapshot tells only the difference: what it lacks went, the same value is quiet', () => {
    const { v, told } = view();
    v.beginSnapshot();
    for (const [key, value, revision] of [
      ['a', '1', 1],
      ['b', '2', 2],
      ['c', '3', 3],
    ] as const) {
      v.apply({ key, value, revision });
    }
    v.endSnapshot();
    told.length = 0;
    v.beginSnapshot();
    v.apply({ key: 'a', value: '1', revision: 1 });
    v.apply({ key: 'c', value: '4', revision: 7 });
    v.apply({ key: 'd', value: '5', revision: 8 });
    v.endSnapshot();
    expect(told.sort()).toEqual(['b:2>-', 'c:3>4', 'd:->5']);
    expect(v.revision('c')).toBe(7);
  });

  it('a value that does not decode is told once per revision and keeps what was good', () => {
    const { v, told } = view();
    v.apply({ key: 'a', value: '1', revision: 1 });
    v.apply({ key: 'a', value: 'x', revision: 2 });
    v.apply({ key: 'a', value: 'x', revision: 2 });
    v.apply({ key: 'a', value: 'y', revision: 3 });
    expect(told).toEqual(['a:->1', 'refused a: not a number', 'refused a: not a number']);
    expect(v.get('a')).toEqual({ n: 1 });
  });
});
