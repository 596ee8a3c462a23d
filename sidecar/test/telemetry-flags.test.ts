// `cnmd daemon`'s telemetry flags: --metrics-addr (nothing listens without it), --log-format,
// --log-level, and their config file keys.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/daemon/main.js';

describe('daemon flags', () => {
  it('takes --metrics-addr as [HOST:]PORT, 127.0.0.1 by default, and the log settings', async () => {
    const c = await loadConfig(['--metrics-addr', '9464', '--log-format', 'json', '--log-level', 'warn']);
    expect(c).toMatchObject({ metricsAddr: { host: '127.0.0.1', port: 9464 }, logFormat: 'json', logLevel: 'warn' });
    expect(await loadConfig(['--metrics-addr', '0.0.0.0:9100'])).toMatchObject({
      metricsAddr: { host: '0.0.0.0', port: 9100 },
    });
  });

  it('has no metrics listener unless asked, and logs text at info', async () => {
    const c = await loadConfig([]);
    expect(c).not.toHaveProperty('metricsAddr');
    expect(c).toMatchObject({ logFormat: 'text', logLevel: 'info' });
  });

  it.each([
    [['--metrics-addr', 'localhost:9100']],
    [['--metrics-addr', '99999']],
    [['--log-format', 'yaml']],
    [['--log-level', 'trace']],
  ])('refuses %j', async (flags) => {
    await expect(loadConfig(flags)).rejects.toMatchObject({ code: 'SIDECAR_CONFIG_INVALID' });
  });

  it('takes the same from the config file, flags over it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cnmd-config-'));
    try {
      const file = join(dir, 'c.json');
      await writeFile(file, JSON.stringify({ metricsAddr: '127.0.0.2:9100', logFormat: 'json', logLevel: 'debug' }));
      expect(await loadConfig(['--config', file, '--log-level', 'error'])).toMatchObject({
        metricsAddr: { host: '127.0.0.2', port: 9100 },
        logFormat: 'json',
        logLevel: 'error',
      });
      await writeFile(file, JSON.stringify({ metricsAddr: 9100 }));
      await expect(loadConfig(['--config', file])).rejects.toMatchObject({ code: 'SIDECAR_CONFIG_INVALID' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
