import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { compareVersions } from '../src/docker/client.js';
import { type DockerEvent, EventStream, parseEvent } from '../src/docker/events.js';
import { containerOf } from '../src/docker/inspect.js';
import { resolvConfFor } from '../src/docker/resolv-conf.js';

const ID = 'f2b5121b86fd0e75b6fb1084307897f82dde24c7e4db8ddc43b04ef6799fb5de';

describe('API versions', () => {
  it.each([
    ['1.41', '1.41', 0],
    ['1.40', '1.41', -1],
    ['1.45', '1.41', 1],
    ['1.9', '1.41', -1],
    ['2', '1.41', 1],
  ])('%s against %s', (a, b, sign) => {
    expect(Math.sign(compareVersions(a, b))).toBe(sign);
  });
});

describe('the event stream', () => {
  it('yields one event per line, whatever the chunks', async () => {
    const a = { Type: 'container', Action: 'start', Actor: { ID: 'a', Attributes: { name: 'x' } }, timeNano: 1 };
    const b = { Type: 'container', Action: 'die', Actor: { ID: 'b' } };
    const text = `${JSON.stringify(a)}\n\n{"Type":"container"}\n${JSON.stringify(b)}\n`;
    const chunks = [text.slice(0, 7), text.slice(7, 50), text.slice(50)].map((s) => Buffer.from(s));
    let released = 0;
    const got: DockerEvent[] = [];
    for await (const ev of new EventStream(Readable.from(chunks), () => released++)) got.push(ev);
    expect(got).toEqual([a, b]);
    expect(released).toBeGreaterThan(0);
  });

  it('refuses a line that is not JSON', () => {
    expect(() => parseEvent('{"Type":')).toThrow(expect.objectContaining({ code: 'SIDECAR_DOCKER_API' }));
  });

  it('ends with SIDECAR_DOCKER_UNAVAILABLE when the connection breaks', async () => {
    const body = new Readable({ read() {} });
    const stream = new EventStream(body, () => {});
    const it = stream[Symbol.asyncIterator]();
    const next = it.next();
    body.destroy(new Error('socket hang up'));
    await expect(next).rejects.toMatchObject({ code: 'SIDECAR_DOCKER_UNAVAILABLE' });
  });
});

describe('inspect', () => {
  const raw = {
    Id: ID,
    Name: '/web-1',
    Config: { Hostname: ID.slice(0, 12), Labels: { 'cnmd.networks': 'app' } },
    State: { Running: true, Pid: 4242 },
    HostConfig: { NetworkMode: 'none' },
    NetworkSettings: { SandboxKey: '/var/run/docker/netns/0490de882333' },
    ResolvConfPath: `/var/lib/docker/containers/${ID}/resolv.conf`,
  };

  it('takes the SandboxKey and ResolvConfPath when they are visible here', () => {
    expect(containerOf(raw, () => true)).toEqual({
      id: ID,
      name: 'web-1',
      labels: { 'cnmd.networks': 'app' },
      running: true,
      pid: 4242,
      networkMode: 'none',
      sandbox: '/var/run/docker/netns/0490de882333',
      resolvConf: `/var/lib/docker/containers/${ID}/resolv.conf`,
    });
  });

  it('else reaches them through /proc/PID (a sidecar container with pid: host)', () => {
    const c = containerOf(raw, () => false);
    expect(c.sandbox).toBe('/proc/4242/ns/net');
    expect(c.resolvConf).toBe('/proc/4242/root/etc/resolv.conf');
  });

  it('keeps a hostname the user set, not the default short id', () => {
    expect(containerOf(raw, () => true).hostname).toBeUndefined();
    expect(containerOf({ ...raw, Config: { ...raw.Config, Hostname: 'db' } }, () => true).hostname).toBe('db');
  });

  it('takes the container’s own DNS settings from HostConfig, when it has any', () => {
    expect(containerOf(raw, () => true).dns).toBeUndefined();
    const withDns = {
      ...raw,
      HostConfig: { ...raw.HostConfig, Dns: ['10.0.0.2'], DnsSearch: null, DnsOptions: ['ndots:2'] },
    };
    expect(containerOf(withDns, () => true).dns).toEqual({ servers: ['10.0.0.2'], search: [], options: ['ndots:2'] });
  });

  it('a stopped container is not running; an answer without an id is refused', () => {
    expect(containerOf({ ...raw, State: { Running: false, Pid: 0 } }, () => true).running).toBe(false);
    expect(() => containerOf({ Name: '/x' })).toThrow(expect.objectContaining({ code: 'SIDECAR_DOCKER_API' }));
  });
});

describe('resolv.conf', () => {
  it('names 127.0.0.11 and keeps search, domain and options', () => {
    const engine =
      'search corp.test\nnameserver 10.0.0.2\nnameserver 8.8.8.8\noptions ndots:2 timeout:1\ndomain corp.test\n';
    const ours = resolvConfFor(engine);
    expect(ours.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'search corp.test',
      'options ndots:2 timeout:1',
      'domain corp.test',
      'nameserver 127.0.0.11',
      '',
    ]);
    expect(resolvConfFor(ours)).toBe(ours);
  });
});
