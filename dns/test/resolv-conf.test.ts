import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseResolvConf, readResolvConf, upstreamsFromResolvConf } from '../src/index.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const text = `# written by the test
nameserver 127.0.0.53
nameserver 192.0.2.53 # a comment
nameserver ::1
nameserver 2001:db8::53
nameserver not-an-address
search example.test other.test
options ndots:2 timeout:1
`;

describe('resolv.conf', () => {
  it('parses nameservers, search and options', () => {
    expect(parseResolvConf(text)).toEqual({
      nameservers: ['127.0.0.53', '192.0.2.53', '::1', '2001:db8::53'],
      search: ['example.test', 'other.test'],
      options: ['ndots:2', 'timeout:1'],
    });
  });

  it('drops loopback nameservers, as Docker does', () => {
    expect(upstreamsFromResolvConf(text)).toEqual(['192.0.2.53', '2001:db8::53']);
  });

  it('reads a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cnmd-dns-'));
    dirs.push(dir);
    await writeFile(join(dir, 'resolv.conf'), text);
    expect(await readResolvConf(join(dir, 'resolv.conf'))).toEqual(['192.0.2.53', '2001:db8::53']);
  });
});
