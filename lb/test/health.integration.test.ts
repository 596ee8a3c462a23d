import { createServer as http } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as tcp } from 'node:net';
import { expect, it } from 'vitest';
import { defaultProbe } from '../src/health.js';
import type { HealthCheck } from '../src/service.js';

const check = (over: Partial<HealthCheck>): HealthCheck => ({
  type: 'tcp',
  port: 1,
  path: '/',
  intervalMs: 1000,
  timeoutMs: 500,
  healthyThreshold: 1,
  unhealthyThreshold: 1,
  ...over,
});

it('a TCP check succeeds on a listening port and fails on a closed one', async () => {
  const s = tcp((c) => c.end()).listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address() as AddressInfo;
  try {
    expect(await defaultProbe('127.0.0.1', check({ port }))).toBe(true);
  } finally {
    await new Promise((r) => s.close(r));
  }
  expect(await defaultProbe('127.0.0.1', check({ port }))).toBe(false);
});

it('an HTTP check wants a status below 400 in time', async () => {
  const s = http((q, res) => {
    if (q.url === '/slow') setTimeout(() => res.end('late'), 1000);
    else res.writeHead(q.url === '/ok' ? 200 : 503).end();
  }).listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address() as AddressInfo;
  try {
    expect(await defaultProbe('127.0.0.1', check({ type: 'http', port, path: '/ok' }))).toBe(true);
    expect(await defaultProbe('127.0.0.1', check({ type: 'http', port, path: '/down' }))).toBe(false);
    expect(await defaultProbe('127.0.0.1', check({ type: 'http', port, path: '/slow', timeoutMs: 100 }))).toBe(false);
  } finally {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});
