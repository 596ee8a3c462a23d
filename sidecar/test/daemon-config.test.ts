// `cnmd daemon`'s settings: the config file's own keys only, types and ranges, flags over the
// file, and the TCP API only with a token.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, parseTcpAddress } from '../src/daemon/main.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cnmd-config-'));
  await writeFile(join(dir, 'token'), 'secret-token-1234567890\n');
  await writeFile(join(dir, 'short'), 'abc\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function withFile(content: unknown, ...flags: string[]) {
  const file = join(dir, `c-${Math.random().toString(16).slice(2)}.json`);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return loadConfig(['--config', file, ...flags]);
}

describe('refused with SIDECAR_CONFIG_INVALID', () => {
  it.each([
    ['an inherited name', '{"toString": "x"}'],
    ['constructor', '{"constructor": "x"}'],
    ['__proto__', '{"__proto__": {"socket": "/x"}}'],
    ['an unknown key', { sockets: '/x' }],
    ['a wrong type', { socket: 5 }],
    ['sweepMs past 2^31-1', { sweepMs: 2 ** 31 }],
    ['sweepMs below 100', { sweepMs: 1 }],
    ['sweepMs negative', { sweepMs: -5 }],
    ['sweepMs not an integer', { sweepMs: 150.5 }],
    ['dockerMaxNetworks over its range', { dockerMaxNetworks: 5000 }],
    ['an unknown lbDataplane', { lbDataplane: 'magic' }],
    ['apiTcp without a token file', { apiTcp: '8080' }],
    ['apiTcp with a host name', { apiTcp: 'localhost:8080', apiTokenFile: '/dev/null' }],
    ['a token that is too short', { apiTcp: '8080', apiTokenFile: '@short' }],
    ['dnsUpstreams not a list', { dnsUpstreams: '1.1.1.1' }],
    ['not an object', '[1]'],
  ])('%s', async (_, content) => {
    const text = typeof content === 'string' ? content : JSON.stringify(content).replace('@short', join(dir, 'short'));
    await expect(withFile(text)).rejects.toMatchObject({ code: 'SIDECAR_CONFIG_INVALID' });
  });

  it.each([
    [['--sweep-ms', '5']],
    [['--docker-max-networks', 'many']],
    [['--docker-create-networks', 'maybe']],
    [['--lb-dataplane', 'x']],
    [['--api-tcp', '9000']],
  ])('flags %j', async (flags) => {
    await expect(loadConfig(flags)).rejects.toMatchObject({ code: 'SIDECAR_CONFIG_INVALID' });
  });
});

describe('accepted', () => {
  it('takes the file, and flags over it', async () => {
    const c = await withFile(
      { socket: '/a.sock', sweepMs: 0, dockerCreateNetworks: false, dockerMaxNetworks: 3 },
      '--socket',
      '/b.sock',
      '--docker-max-networks',
      '4',
    );
    expect(c).toMatchObject({ socket: '/b.sock', sweepMs: 0, dockerCreateNetworks: false, dockerMaxNetworks: 4 });
  });

  it('serves TCP on loopback unless told, with the token from its file', async () => {
    const c = await loadConfig(['--api-tcp', '9000', '--api-token-file', join(dir, 'token')]);
    expect(c).toMatchObject({ apiTcp: { host: '127.0.0.1', port: 9000 }, apiToken: 'secret-token-1234567890' });
  });

  it.each([
    ['9000', { host: '127.0.0.1', port: 9000 }],
    ['0.0.0.0:9000', { host: '0.0.0.0', port: 9000 }],
    ['[::1]:9000', { host: '::1', port: 9000 }],
  ])('apiTcp %s', (s, want) => {
    expect(parseTcpAddress(s)).toEqual(want);
  });
});
