import { describe, expect, it } from 'vitest';
import { BitmapAllocator, SparseAllocator } from '../src/internal.js';

describe('BitmapAllocator', () => {
  it('hands out slots in order, continuing after the last one and wrapping', () => {
    const b = new BitmapAllocator(8);
    expect([b.next(0, 7), b.next(0, 7), b.next(0, 7)]).toEqual([0, 1, 2]);
    b.free(1);
    // 1 was just released: the cursor moves on before coming back to it.
    expect([b.next(0, 7), b.next(0, 7)]).toEqual([3, 4]);
    expect([b.next(0, 7), b.next(0, 7), b.next(0, 7), b.next(0, 7)]).toEqual([5, 6, 7, 1]);
    expect(b.next(0, 7)).toBeUndefined();
    expect(b.used).toBe(8);
  });

  it('stays inside the window it is given', () => {
    const b = new BitmapAllocator(100);
    const got = Array.from({ length: 5 }, () => b.next(40, 43));
    expect(got).toEqual([40, 41, 42, 43, undefined]);
  });

  it('crosses word boundaries and finds the one free slot in a full map', () => {
    const b = new BitmapAllocator(200);
    for (let i = 0; i < 200; i++) expect(b.next(0, 199)).toBe(i);
    b.free(63);
    b.free(150);
    expect(b.next(0, 199)).toBe(63);
    expect(b.next(0, 199)).toBe(150);
    expect(b.next(0, 199)).toBeUndefined();
  });

  it('take and free report whether they changed anything', () => {
    const b = new BitmapAllocator(64);
    expect(b.take(31)).toBe(true);
    expect(b.take(31)).toBe(false);
    expect(b.has(31)).toBe(true);
    expect(b.free(31)).toBe(true);
    expect(b.free(31)).toBe(false);
    expect(b.used).toBe(0);
  });

  it('lists taken slots in order', () => {
    const b = new BitmapAllocator(100);
    for (const s of [99, 0, 31, 32, 64]) b.take(s);
    expect([...b.taken()]).toEqual([0, 31, 32, 64, 99]);
  });
});

describe('SparseAllocator', () => {
  it('allocates in a 2^64 range without a bitmap, serially', () => {
    const s = new SparseAllocator(2n ** 64n);
    expect([s.next(1n, 2n ** 64n - 1n), s.next(1n, 2n ** 64n - 1n)]).toEqual([1n, 2n]);
    expect(s.take(2n ** 63n)).toBe(true);
    expect(s.take(2n ** 63n)).toBe(false);
    expect([...s.taken()]).toEqual([1n, 2n, 2n ** 63n]);
  });

  it('wraps and reports exhaustion of a window', () => {
    const s = new SparseAllocator(10n);
    expect([s.next(2n, 4n), s.next(2n, 4n), s.next(2n, 4n), s.next(2n, 4n)]).toEqual([2n, 3n, 4n, undefined]);
    s.free(3n);
    expect(s.next(2n, 4n)).toBe(3n);
  });
});
