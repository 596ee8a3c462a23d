// The CLI's own checks, before it talks to any daemon: options belong to their command,
// numbers are numbers, and an option meant once per family is not silently overwritten.
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  // A socket nobody listens on: a command that got past its checks says API_UNAVAILABLE.
  const code = await main(
    [...argv, '--socket', '/nonexistent/cnmd.sock'],
    { out: (s) => (out += s), err: (s) => (err += s) },
    {},
  );
  return { code, out, err };
}

describe('refused before anything is sent', () => {
  it.each([
    [['network', 'ls', '--vip', '10.0.0.1'], 'API_INVALID_ARGUMENT'],
    [['ps', '--network', 'x'], 'API_INVALID_ARGUMENT'],
    [['network', 'rm', 'a', '--mtu', '1400'], 'API_INVALID_ARGUMENT'],
    [['network', 'create', 'n', '--mtu', 'abc'], '--mtu "abc"'],
    [['network', 'create', 'n', '--mtu', '9999999'], '--mtu'],
    [['network', 'create', 'n', '--mtu', '1400.5'], '--mtu'],
    [['network', 'create', 'n', '--subnet', '10.0.0.0/24', '--subnet', '10.1.0.0/24'], 'an IPv4 one is given already'],
    [['network', 'create', 'n', '--gateway', 'fd00::1', '--gateway', 'fd00::2'], 'an IPv6 one is given already'],
    [['network', 'create', 'n', '--opt', 'parent=a', '--opt', 'parent=b'], 'given twice'],
    [['service', 'create', 's', '--network', 'n', '--vip', '10.0.0.5', '--vip', '10.0.0.6'], 'given already'],
    [['attach', 'ns', '--network', 'n', '--weight', '-1'], 'API_INVALID_ARGUMENT'],
    [['attach', 'ns', '--network', 'n', '--weight', 'x'], '--weight'],
    [['attach', 'ns', 'extra', '--network', 'n'], 'unexpected argument'],
    [['network', 'create'], 'a network name is required'],
  ])('cnmd %j', async (argv, says) => {
    const r = await cli(...argv);
    expect(r.code).toBe(1);
    expect(r.err).toContain(says);
    expect(r.err).not.toContain('API_UNAVAILABLE');
  });

  it('an unknown command is exit 2', async () => {
    expect((await cli('network', 'frobnicate')).code).toBe(2);
  });
});

describe('accepted, then sent', () => {
  it.each([
    [['network', 'create', 'n', '--subnet', '10.0.0.0/24', '--subnet', 'fd00::/64', '--mtu', '1400']],
    [['service', 'create', 's', '--network', 'n', '--vip', '10.0.0.5', '--vip', 'fd00::5']],
    [['attach', 'ns', '--network', 'n', '--weight', '0', '--service', 's']],
    [['ps', '--json']],
    [['network', 'inspect', 'n', '--json']],
  ])('cnmd %j', async (argv) => {
    const r = await cli(...argv);
    expect(r.err).toContain('API_UNAVAILABLE');
  });
});
