// The admin API's limits against clients that do not play along (the reliability campaign of
// #16): a body declared past the limit, a client that sends its headers a byte at a time, a
// crowd connecting at once. Over a real unix socket, against a controller that is never reached.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiServer } from '../src/api/server.js';
import type { Controller } from '../src/network/spec.js';

const controller = { listNetworks: () => [] } as unknown as Controller;

let dir: string;
let server: ApiServer;
const socket = () => join(dir, 'api.sock');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cnmd-api-limits-'));
  server = new ApiServer({ controller, socket: socket() });
  await server.start();
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Writes `head`, then `drip` a character a second; what came back and when the server closed. */
function client(head: string, drip = ''): Promise<{ text: string; closedMs: number | undefined }> {
  return new Promise((resolve) => {
    const s = net.connect(socket());
    const t0 = Date.now();
    let text = '';
    let i = 0;
    s.on('data', (d) => (text += d));
    s.on('error', () => {});
    s.write(head);
    const timer = setInterval(() => drip && !s.destroyed && s.write(drip[i++ % drip.length]!), 1000);
    const end = (closedMs: number | undefined) => {
      clearInterval(timer);
      clearTimeout(limit);
      s.destroy();
      resolve({ text, closedMs });
    };
    const limit = setTimeout(() => end(undefined), 20_000);
    s.on('close', () => end(Date.now() - t0));
  });
}

it('refuses a body declared past 1 MiB at once with 413, and closes the connection', async () => {
  // Nothing of the body is sent: the length alone refuses it (it used to wait for the body).
  const r = await client('POST /v1/networks HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n');
  expect(r.text).toMatch(/^HTTP\/1\.1 413 /);
  expect(r.text).toContain('"code":"API_TOO_LARGE"');
  expect(r.text).toMatch(/\r\nconnection: close\r\n/i);
  expect(r.closedMs).toBeLessThan(2000);
});

it('closes a connection whose headers come a byte a second (slowloris) within the header timeout', async () => {
  const r = await client('GET /v1/networks HTTP/1.1\r\nHost: x\r\n', 'X-a: b\r\n');
  // 10 s for the headers, checked every second (Node's defaults: 60 s, checked every 30 s).
  expect(r.closedMs).toBeGreaterThan(9_000);
  expect(r.closedMs).toBeLessThan(13_000);
}, 30_000);

it('answers 1,000 clients connecting at once (none refused by a full accept queue)', async () => {
  const one = () =>
    new Promise<string>((resolve) => {
      const s = net.connect(socket());
      let text = '';
      s.on('connect', () => s.write('GET /v1/networks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      s.on('data', (d) => (text += d));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.on('close', () => resolve(text.slice(0, 12)));
    });
  const outcomes = await Promise.all(Array.from({ length: 1000 }, one));
  const tally: Record<string, number> = {};
  for (const o of outcomes) tally[o] = (tally[o] ?? 0) + 1;
  expect(tally).toEqual({ 'HTTP/1.1 200': 1000 });
});
