// Without its native addon (not built, or not Linux) the batch transport says so with a code,
// so the sidecar can fall back to DgramTransport.
import { expect, it, vi } from 'vitest';

vi.mock('node:module', () => ({
  createRequire: () => () => {
    throw Object.assign(new Error('Cannot find module cnmd_batch.node'), { code: 'MODULE_NOT_FOUND' });
  },
}));

const { BatchUdpTransport } = await import('../src/transports/batch.js');

it('reports DNS_BATCH_UNAVAILABLE when the addon is missing', () => {
  expect(BatchUdpTransport.available()).toBe(false);
  expect(() => BatchUdpTransport.bind('127.0.0.1', 0)).toThrow(
    expect.objectContaining({
      code: 'DNS_BATCH_UNAVAILABLE',
      cause: expect.objectContaining({ code: 'MODULE_NOT_FOUND' }),
    }),
  );
  expect(() => new BatchUdpTransport(-1)).toThrow(expect.objectContaining({ code: 'DNS_BATCH_UNAVAILABLE' }));
});
