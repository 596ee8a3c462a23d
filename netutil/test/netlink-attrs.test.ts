// Attributes byte for byte: include/uapi/linux/netlink.h, struct nlattr { u16 nla_len; u16
// nla_type; }, the payload, padding to 4 bytes that nla_len does not count; integers little-endian.
import { describe, expect, it } from 'vitest';
import {
  AttrWriter,
  align4,
  attr,
  nested,
  parseAttrs,
  readStr,
  readU16,
  readU32,
  str,
  u8,
  u16,
  u16be,
  u32,
} from '../src/index.js';

const bytes = (...b: number[]) => Buffer.from(b);

describe('writing', () => {
  it.each([
    ['u8', u8(1, 0xab), bytes(5, 0, 1, 0, 0xab, 0, 0, 0)],
    ['u16', u16(2, 0x1234), bytes(6, 0, 2, 0, 0x34, 0x12, 0, 0)],
    ['u16be', u16be(15, 4789), bytes(6, 0, 15, 0, 0x12, 0xb5, 0, 0)],
    ['u32', u32(4, 1450), bytes(8, 0, 4, 0, 0xaa, 0x05, 0, 0)],
    ['u32 of a negative number', u32(4, -1), bytes(8, 0, 4, 0, 0xff, 0xff, 0xff, 0xff)],
    ['str', str(3, 'eth0'), bytes(9, 0, 3, 0, 0x65, 0x74, 0x68, 0x30, 0, 0, 0, 0)],
    ['str, empty', str(6, ''), bytes(5, 0, 6, 0, 0, 0, 0, 0)],
    ['attr, 3 bytes', attr(7, bytes(1, 2, 3)), bytes(7, 0, 7, 0, 1, 2, 3, 0)],
    ['attr, 4 bytes: no padding', attr(7, bytes(1, 2, 3, 4)), bytes(8, 0, 7, 0, 1, 2, 3, 4)],
    ['attr, empty', attr(9, Buffer.alloc(0)), bytes(4, 0, 9, 0)],
  ])('%s', (_, got, want) => {
    expect(got).toEqual(want);
  });

  it('nests: NLA_F_NESTED on the type, the padded children as the payload', () => {
    expect(nested(18, str(1, 'veth'), u8(2, 1))).toEqual(
      bytes(24, 0, 18, 0x80, 9, 0, 1, 0, 0x76, 0x65, 0x74, 0x68, 0, 0, 0, 0, 5, 0, 2, 0, 1, 0, 0, 0),
    );
    expect(nested(2)).toEqual(bytes(4, 0, 2, 0x80));
  });

  it('pads with zeros whatever the memory held before', () => {
    for (let i = 0; i < 100; i++) Buffer.allocUnsafe(8).fill(0xff);
    for (let i = 0; i < 100; i++) expect(str(1, 'abcde').subarray(9)).toEqual(bytes(0, 0, 0));
  });

  it('aligns to 4', () => {
    expect([0, 1, 3, 4, 5, 8].map(align4)).toEqual([0, 4, 4, 4, 8, 8]);
  });
});

describe('AttrWriter', () => {
  it('writes what the functions write, in one buffer', () => {
    const w = new AttrWriter(64)
      .u8(1, 7)
      .u16(2, 0x1234)
      .nested(3, (n) =>
        n
          .u16be(4, 80)
          .u32(5, 0xdeadbeef)
          .bytes(6, 3, (b, at) => b.set([9, 8, 7], at)),
      )
      .done();
    expect(w).toEqual(
      Buffer.concat([u8(1, 7), u16(2, 0x1234), nested(3, u16be(4, 80), u32(5, 0xdeadbeef), attr(6, bytes(9, 8, 7)))]),
    );
  });

  it('zeroes its padding', () => {
    for (let i = 0; i < 100; i++) Buffer.allocUnsafe(16).fill(0xff);
    expect(new AttrWriter(8).u8(1, 1).done()).toEqual(bytes(5, 0, 1, 0, 1, 0, 0, 0));
  });
});

describe('reading', () => {
  it('parses a run back, nested attributes too, flags masked off the type', () => {
    const run = Buffer.concat([
      u32(4, 1500),
      nested(18, str(1, 'veth'), nested(2, attr(1, bytes(1, 2, 3)))),
      u16(5, 7),
    ]);
    const outer = parseAttrs(run);
    expect([...outer.keys()]).toEqual([4, 18, 5]);
    expect(readU32(outer.get(4))).toBe(1500);
    expect(readU16(outer.get(5))).toBe(7);
    const inner = parseAttrs(outer.get(18)!);
    expect(readStr(inner.get(1))).toBe('veth');
    expect(parseAttrs(inner.get(2)!).get(1)).toEqual(bytes(1, 2, 3));
  });

  it('starts at an offset (past a fixed header)', () => {
    const body = Buffer.concat([bytes(1, 2, 3, 4), u32(1, 42)]);
    expect(readU32(parseAttrs(body, 4).get(1))).toBe(42);
  });

  it('stops at a truncated attribute instead of reading past the buffer', () => {
    expect([...parseAttrs(Buffer.concat([u32(4, 1), bytes(40, 0, 3, 0, 1)])).keys()]).toEqual([4]);
    expect([...parseAttrs(Buffer.concat([u32(4, 1), bytes(2, 0, 3, 0)])).keys()]).toEqual([4]);
    expect([...parseAttrs(bytes(8, 0)).keys()]).toEqual([]);
  });

  it('reads what is there, and undefined for what is missing or short', () => {
    expect(readStr(bytes(0x61, 0x62))).toBe('ab'); // no NUL
    expect(readStr(bytes(0x61, 0, 0x62))).toBe('a');
    expect(readStr(undefined)).toBeUndefined();
    expect(readU16(bytes(1))).toBeUndefined();
    expect(readU32(bytes(1, 2, 3))).toBeUndefined();
    expect(readU32(undefined)).toBeUndefined();
    expect(readU32(bytes(0xff, 0xff, 0xff, 0xff))).toBe(0xffffffff);
  });
});
