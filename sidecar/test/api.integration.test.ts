// The admin API over a real unix socket and TCP, against a controller that fails as told: the
// HTTP status a client sees for each kind of error, and the bearer token of the TCP listener.
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer } from '../src/api/server.js';
import { SidecarError, type SidecarErrorCode } from '../src/errors.js';
import type { Controller } from '../src/network/spec.js';

const TOKEN = 'a-test-token-of-some-length';

/** A controller whose inspectNetwork throws the error named by the network's name. */
const controller = {
  listNetworks: () => [],
  inspectNetwork: (name: string) => {
    if (name === 'boom') throw new Error('not a coded error');
    throw new SidecarError(name as SidecarErrorCode, `thrown for ${name}`);
  },
  inspectContainer: (path: string) => {
    throw new SidecarError('SIDECAR_ENDPOINT_NOT_FOUND', `no container ${path}`);
  },
} as unknown as Controller;

let dir: string;
let server: ApiServer;
let port: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cnmd-api-'));
  server = new ApiServer({
    controller,
    socket: join(dir, 'api.sock'),
    tcp: { host: '127.0.0.1', port: 0 },
    token: TOKEN,
  });
  await server.start();
  port = server.tcpAddress()!.port;
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

function call(
  path: string,
  opts: { tcp?: boolean; token?: string; method?: string } = {},
): Promise<{ status: number; body: { code?: string } }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...(opts.tcp ? { host: '127.0.0.1', port } : { socketPath: join(dir, 'api.sock') }),
        method: opts.method ?? 'GET',
        path,
        headers: opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('status by error code', () => {
  it.each([
    ['SIDECAR_NETNS_INVALID', 400],
    ['SIDECAR_INVALID_ARGUMENT', 400],
    ['IPAM_INVALID_CIDR', 400],
    ['SIDECAR_NETNS_HOST', 403],
    ['SIDECAR_NETWORK_NOT_FOUND', 404],
    ['SIDECAR_NETWORK_EXISTS', 409],
    ['IPAM_POOL_EXHAUSTED', 409],
    ['SIDECAR_LB_UNAVAILABLE', 503],
    ['SIDECAR_NETLINK', 500],
    ['SIDECAR_STATE_CONFLICT', 500],
  ])('%s is %i', async (code, status) => {
    const r = await call(`/v1/networks/${code}`);
    expect(r).toEqual({ status, body: { code, message: `thrown for ${code}` } });
  });

  it('an error without a code is a 500 API_INTERNAL', async () => {
    expect(await call('/v1/networks/boom')).toMatchObject({ status: 500, body: { code: 'API_INTERNAL' } });
  });

  it('a malformed %-escape is a 400 API_BAD_REQUEST, not a fault of the daemon', async () => {
    expect(await call('/v1/containers/%E0%A4%A')).toMatchObject({ status: 400, body: { code: 'API_BAD_REQUEST' } });
    expect(await call('/v1/networks/%zz')).toMatchObject({ status: 400, body: { code: 'API_BAD_REQUEST' } });
  });

  it('an unknown path is 404, a wrong method 405, a missing query 400', async () => {
    expect(await call('/v1/nope')).toMatchObject({ status: 404, body: { code: 'API_NOT_FOUND' } });
    expect(await call('/v1/health', { method: 'DELETE' })).toMatchObject({ status: 405 });
    expect(await call('/v1/endpoints', { method: 'DELETE' })).toMatchObject({
      status: 400,
      body: { code: 'API_INVALID_ARGUMENT' },
    });
  });
});

describe('the TCP listener', () => {
  it('refuses a request without a token, or with a wrong one, with 401', async () => {
    expect(await call('/v1/health', { tcp: true })).toMatchObject({ status: 401, body: { code: 'API_UNAUTHORIZED' } });
    expect(await call('/v1/health', { tcp: true, token: 'wrong' })).toMatchObject({ status: 401 });
    expect(await call('/v1/health', { tcp: true, token: `${TOKEN}x` })).toMatchObject({ status: 401 });
    expect(await call('/v1/networks/SIDECAR_NETWORK_EXISTS', { tcp: true })).toMatchObject({ status: 401 });
  });

  it('serves a request with the right token', async () => {
    expect(await call('/v1/health', { tcp: true, token: TOKEN })).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('the unix socket needs none (its file mode is its access control)', async () => {
    expect(await call('/v1/health')).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('will not start without a token', () => {
    expect(
      () => new ApiServer({ controller, socket: join(dir, 'x.sock'), tcp: { host: '127.0.0.1', port: 0 } }),
    ).toThrow(expect.objectContaining({ code: 'SIDECAR_CONFIG_INVALID' }));
  });
});
