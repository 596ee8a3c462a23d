// The generic netlink socket against this host's kernel, unprivileged: the controller answers
// anyone. Where the kernel has no IPVS (these development machines), opening the data plane
// says so with LB_IPVS_UNAVAILABLE, the code the sidecar falls back to nftables on.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IpvsDataPlane } from '../src/dataplanes/ipvs.js';
import { decodeFamilyId, getFamilyRequest } from '../src/ipvs/codec.js';
import { GenlSocket } from '../src/ipvs/genl-socket.js';

describe('GenlSocket', () => {
  it('matches 1,000 pipelined requests to their replies (more than one window)', async () => {
    const sock = GenlSocket.open();
    try {
      const replies = await Promise.all(
        Array.from({ length: 1000 }, () => sock.request(getFamilyRequest('nlctrl'), 'GETFAMILY nlctrl')),
      );
      // include/uapi/linux/genetlink.h: GENL_ID_CTRL, the controller's own id
      expect(new Set(replies.map(([r]) => decodeFamilyId(r!)))).toEqual(new Set([0x10]));
    } finally {
      sock.close();
    }
  });

  it('a refusal carries the errno; the socket goes on', async () => {
    const sock = GenlSocket.open();
    try {
      const err = await sock.request(getFamilyRequest('no-such-family'), 'GETFAMILY').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'LB_NETLINK', errno: 2 }); // ENOENT
      expect(await sock.request(getFamilyRequest('nlctrl'), 'GETFAMILY')).toHaveLength(1);
    } finally {
      sock.close();
    }
  });

  it('requestAll: 600 requests over three datagrams, each failure at its own index', async () => {
    const sock = GenlSocket.open();
    try {
      // the last of each datagram of 256 is the one acknowledged: make some of those fail too
      const bad = new Set([0, 255, 256, 300, 511, 599]);
      const reqs = Array.from({ length: 600 }, (_, i) => getFamilyRequest(bad.has(i) ? `no-such-${i}` : 'nlctrl'));
      const errors = await sock.requestAll(reqs, () => 'GETFAMILY');
      expect(errors.flatMap((e, i) => (e ? [i] : []))).toEqual([...bad]);
      expect(errors[300]).toMatchObject({ code: 'LB_NETLINK', errno: 2 });
      expect(await sock.requestAll([], () => '')).toEqual([]);
    } finally {
      sock.close();
    }
  });

  it('after close, requests fail with LB_CLOSED', async () => {
    const sock = GenlSocket.open();
    sock.close();
    sock.close();
    await expect(sock.request(getFamilyRequest(), 'GETFAMILY')).rejects.toMatchObject({ code: 'LB_CLOSED' });
  });
});

describe.skipIf(existsSync('/proc/net/ip_vs'))('IpvsDataPlane where the kernel has no IPVS', () => {
  it('create() fails with LB_IPVS_UNAVAILABLE', async () => {
    await expect(IpvsDataPlane.create()).rejects.toMatchObject({ code: 'LB_IPVS_UNAVAILABLE' });
  });
});
