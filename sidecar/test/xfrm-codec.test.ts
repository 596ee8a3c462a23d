// The XFRM messages byte for byte, at the offsets of include/uapi/linux/xfrm.h on x86_64
// (checked with offsetof): what `ip xfrm state/policy add` would send. The kernel's answer to
// them is the VM's test (e2e/test/overlay-encrypted.vm.test.ts).
import { describe, expect, it } from 'vitest';
import * as X from '../src/kernel/xfrm/messages.js';

const attrs = (b: Buffer, from: number) => {
  const out: { type: number; data: Buffer }[] = [];
  for (let at = from; at + 4 <= b.length; ) {
    const len = b.readUInt16LE(at);
    out.push({ type: b.readUInt16LE(at + 2), data: b.subarray(at + 4, at + len) });
    at += (len + 3) & ~3;
  }
  return out;
};

describe('XFRM states', () => {
  const key = Buffer.from('000102030405060708090a0b0c0d0e0f10111213', 'hex');
  const sa = { src: '198.18.0.10', dst: '198.18.0.11', spi: 0xdeadbeef, reqid: 4096, key };

  it('xfrm_usersa_info: ESP in transport mode, its SPI big-endian, no lifetime limits', () => {
    const b = X.saInfo(sa);
    expect(b.subarray(56, 60)).toEqual(Buffer.from([198, 18, 0, 11])); // id.daddr
    expect(b.readUInt32BE(72)).toBe(0xdeadbeef); // id.spi, network order
    expect(b[76]).toBe(50); // id.proto ESP
    expect(b.subarray(80, 84)).toEqual(Buffer.from([198, 18, 0, 10])); // saddr
    expect(b.readBigUInt64LE(96)).toBe(0xffffffffffffffffn); // lft.soft_byte_limit
    expect(b.readUInt32LE(208)).toBe(4096); // reqid
    expect(b.readUInt16LE(212)).toBe(2); // family AF_INET
    expect(b[214]).toBe(0); // mode transport
    expect(b[215]).toBe(32); // replay_window
    const [aead] = attrs(b, 224);
    expect(aead!.type).toBe(X.XFRMA_ALG_AEAD);
    expect(aead!.data.subarray(0, 17).toString()).toBe('rfc4106(gcm(aes))');
    expect(aead!.data.readUInt32LE(64)).toBe(160); // key bits
    expect(aead!.data.readUInt32LE(68)).toBe(128); // ICV bits
    expect(aead!.data.subarray(72)).toEqual(key);
  });

  it('refuses a key of the wrong length and an IPv6 address', () => {
    expect(() => X.saInfo({ ...sa, key: Buffer.alloc(16) })).toThrow(/20 bytes/);
    expect(() => X.saInfo({ ...sa, dst: 'fd00::1' })).toThrow(/IPv4 only/);
  });

  it('a state read back (without its key, as the kernel lists it)', () => {
    const { key: _, ...listed } = sa;
    expect(X.parseSa(X.saInfo(sa))).toEqual(listed);
  });

  it('xfrm_usersa_id of a delete: destination, SPI, protocol, and the source as an attribute', () => {
    const b = X.saId(sa);
    expect(b.subarray(0, 4)).toEqual(Buffer.from([198, 18, 0, 11]));
    expect(b.readUInt32BE(16)).toBe(0xdeadbeef);
    expect(b.readUInt16LE(20)).toBe(2);
    expect(b[22]).toBe(50);
    expect(attrs(b, 24)).toEqual([
      { type: X.XFRMA_SRCADDR, data: Buffer.concat([Buffer.from([198, 18, 0, 10]), Buffer.alloc(12)]) },
    ]);
  });
});

describe('XFRM policies', () => {
  const out: X.Policy = {
    src: '198.18.0.10',
    dst: '198.18.0.11',
    dir: 'out',
    dport: 4800,
    priority: 100,
    tmpl: { src: '198.18.0.10', dst: '198.18.0.11', reqid: 4096, spi: 0x1234 },
  };

  it('xfrm_userpolicy_info: host to host, UDP to one port, ESP transport by its SPI', () => {
    const b = X.policyInfo(out);
    expect(b.subarray(0, 4)).toEqual(Buffer.from([198, 18, 0, 11])); // sel.daddr
    expect(b.subarray(16, 20)).toEqual(Buffer.from([198, 18, 0, 10])); // sel.saddr
    expect(b.readUInt16BE(32)).toBe(4800); // sel.dport
    expect(b.readUInt16BE(34)).toBe(0xffff); // sel.dport_mask
    expect(b.readUInt16LE(40)).toBe(2);
    expect([b[42], b[43], b[44]]).toEqual([32, 32, 17]); // prefixes, UDP
    expect(b.readUInt32LE(152)).toBe(100); // priority
    expect([b[160], b[161]]).toEqual([X.XFRM_POLICY_OUT, X.XFRM_POLICY_ALLOW]);
    const [t] = attrs(b, 168);
    expect(t!.type).toBe(X.XFRMA_TMPL);
    expect(t!.data.readUInt32BE(16)).toBe(0x1234); // id.spi
    expect(t!.data[20]).toBe(50);
    expect(t!.data.readUInt32LE(44)).toBe(4096); // reqid
    expect(t!.data[48]).toBe(0); // transport
    expect(X.parsePolicy(b)).toEqual(out);
  });

  it('a prefix selector (from anywhere) and a block policy, read back the same', () => {
    const any: X.Policy = {
      src: '0.0.0.0/0',
      dst: '198.18.0.10',
      dir: 'in',
      dport: 4800,
      priority: 100,
      tmpl: { src: '0.0.0.0', dst: '0.0.0.0', reqid: 4096, spi: 0 },
    };
    const b = X.policyInfo(any);
    expect([b[42], b[43]]).toEqual([32, 0]);
    expect(X.parsePolicy(b)).toEqual(any);
    const block: X.Policy = {
      src: '198.18.0.10',
      dst: '0.0.0.0/0',
      dir: 'out',
      dport: 4800,
      priority: 200,
      action: 'block',
    };
    const bb = X.policyInfo(block);
    expect(bb.length).toBe(168); // no template
    expect(bb[161]).toBe(X.XFRM_POLICY_BLOCK);
    expect(X.parsePolicy(bb)).toEqual(block);
    expect(() => X.policyInfo({ ...block, dst: '0.0.0.0/33' })).toThrow(/prefix/);
  });

  it('xfrm_userpolicy_id of a delete: the selector and the direction', () => {
    const b = X.policyId(out);
    expect(b.length).toBe(64);
    expect(b.subarray(0, 56)).toEqual(X.policyInfo(out).subarray(0, 56));
    expect(b[60]).toBe(X.XFRM_POLICY_OUT);
  });
});
