import { describe, expect, it } from 'vitest';
import { socketExchange } from '../src/internal.js';
import { parseUpstream } from '../src/upstream/upstream-address.js';

// A query for "a." type A, id 0x1234.
const query = Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 0, 0, 1, 0, 1]);

describe('the socket exchange', () => {
  it('rejects, rather than crashing the process, when connect(2) itself fails', async () => {
    // Linux refuses to connect a UDP socket to the broadcast address without SO_BROADCAST (EACCES).
    const err = await socketExchange(parseUpstream('255.255.255.255:53'), query, false, 2000).catch((e) => e);
    expect(err.code).toBe('DNS_UPSTREAM_ERROR');
  });
});
