import { expect, it } from 'vitest';
import { conntrackTool } from '../src/conntrack.js';
import { isLbError } from '../src/errors.js';

it('deletes the UDP flows NATed to a backend, in the family of the VIP', async () => {
  const calls: string[][] = [];
  const ct = conntrackTool({
    exec: async (cmd, args) => {
      calls.push([cmd, ...args]);
      return '';
    },
  });
  expect(await ct.deleteUdp('fd00:1::10', 'fd00:1::2')).toBe(true);
  expect(calls).toEqual([
    ['conntrack', '-D', '-f', 'ipv6', '-p', 'udp', '--orig-dst', 'fd00:1::10', '--reply-src', 'fd00:1::2'],
  ]);
});

it('takes "nothing matched" (exit 1) as none deleted, and anything else as an error', async () => {
  const none = conntrackTool({
    exec: async () => {
      throw new Error('conntrack -D: conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.');
    },
  });
  expect(await none.deleteUdp('10.0.1.10', '10.0.1.2')).toBe(false);
  const broken = conntrackTool({
    exec: async () => {
      throw new Error('conntrack: command not found');
    },
  });
  await expect(broken.deleteUdp('10.0.1.10', '10.0.1.2')).rejects.toSatisfy((e) => isLbError(e, 'LB_CONNTRACK'));
});
