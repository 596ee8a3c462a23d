import { describe, expect, it } from 'vitest';
import { parseLabels } from '../src/docker/labels.js';

describe('docker labels', () => {
  it('leaves containers without cnmd.networks alone', () => {
    expect(parseLabels({})).toBeUndefined();
    expect(parseLabels(null)).toBeUndefined();
    expect(parseLabels({ 'cnmd.aliases': 'a', 'com.docker.compose.service': 'web' })).toBeUndefined();
  });

  it('reads networks in order, with fixed addresses', () => {
    expect(parseLabels({ 'cnmd.networks': 'front, back@10.1.0.7,v6@fd00::7' })).toEqual({
      networks: [{ name: 'front' }, { name: 'back', ip: '10.1.0.7' }, { name: 'v6', ip6: 'fd00::7' }],
      aliases: [],
      ports: [],
    });
  });

  it('reads aliases, service, ports, health and weight', () => {
    expect(
      parseLabels({
        'cnmd.networks': 'app',
        'cnmd.aliases': 'db,primary.db,db',
        'cnmd.service': 'pg',
        'cnmd.ports': 'sql=5432/tcp,53/udp,8080:80',
        'cnmd.health': 'http:80/healthz,interval=2s,timeout=500ms,rise=1,fall=5',
        'cnmd.weight': '0',
        'other.label': 'anything',
      }),
    ).toEqual({
      networks: [{ name: 'app' }],
      aliases: ['db', 'primary.db'],
      service: 'pg',
      ports: [
        { name: 'sql', port: 5432, proto: 'tcp' },
        { port: 53, proto: 'udp' },
        { port: 8080, targetPort: 80, proto: 'tcp' },
      ],
      health: {
        type: 'http',
        port: 80,
        path: '/healthz',
        intervalMs: 2000,
        timeoutMs: 500,
        rise: 1,
        fall: 5,
      },
      weight: 0,
    });
  });

  it('takes the compose service by default; cnmd.service wins, empty opts out', () => {
    const compose = { 'cnmd.networks': 'app', 'com.docker.compose.service': 'web' };
    expect(parseLabels(compose)?.service).toBe('web');
    expect(parseLabels({ ...compose, 'cnmd.service': 'api' })?.service).toBe('api');
    expect(parseLabels({ ...compose, 'cnmd.service': '' })?.service).toBeUndefined();
    expect(parseLabels({ 'cnmd.networks': 'app' })?.service).toBeUndefined();
    expect(parseLabels({ 'cnmd.networks': 'app', 'cnmd.service': 'x', 'cnmd.health': 'tcp:80' })?.health).toEqual({
      type: 'tcp',
      port: 80,
      intervalMs: 5000,
      timeoutMs: 1000,
      rise: 2,
      fall: 3,
    });
  });

  it.each([
    [{ 'cnmd.networks': '' }],
    [{ 'cnmd.networks': 'a,,b' }],
    [{ 'cnmd.networks': '-bad' }],
    [{ 'cnmd.networks': 'a b' }],
    [{ 'cnmd.networks': 'a,a' }],
    [{ 'cnmd.networks': 'a@10.1.0.300' }],
    [{ 'cnmd.networks': 'a@' }],
    [{ 'cnmd.networks': 'n1,n2,n3,n4,n5,n6,n7,n8,n9' }],
    [{ 'cnmd.networks': 'a', 'cnmd.aliases': 'ok,not ok' }],
    [{ 'cnmd.networks': 'a', 'cnmd.service': 'bad name' }],
    [{ 'cnmd.networks': 'a', 'cnmd.ports': '80' }],
    [{ 'cnmd.networks': 'a', 'cnmd.service': 's', 'cnmd.ports': '70000' }],
    [{ 'cnmd.networks': 'a', 'cnmd.service': 's', 'cnmd.ports': '80/sctp' }],
    [{ 'cnmd.networks': 'a', 'cnmd.service': 's', 'cnmd.health': 'udp:53' }],
    [{ 'cnmd.networks': 'a', 'cnmd.service': 's', 'cnmd.health': 'tcp:80/x' }],
    [{ 'cnmd.networks': 'a', 'cnmd.service': 's', 'cnmd.health': 'tcp:80,interval=2' }],
    [{ 'cnmd.networks': 'a', 'cnmd.service': 's', 'cnmd.health': 'tcp:80,retries=3' }],
    [{ 'cnmd.networks': 'a', 'cnmd.service': 's', 'cnmd.health': 'tcp:80,interval=1s,timeout=2s' }],
    [{ 'cnmd.networks': 'a', 'cnmd.service': 's', 'cnmd.weight': '-1' }],
    [{ 'cnmd.networks': 'a', 'cnmd.service': 's', 'cnmd.weight': '70000' }],
    [{ 'cnmd.networks': 'a', 'cnmd.netwrks': 'b' }],
    [{ 'cnmd.networks': 'a', 'cnmd.scope': 'no scope' }],
  ])('refuses %j', (labels) => {
    expect(() => parseLabels(labels)).toThrow(expect.objectContaining({ code: 'SIDECAR_DOCKER_LABEL' }));
  });

  it('reads a scope', () => {
    expect(parseLabels({ 'cnmd.networks': 'a', 'cnmd.scope': 'ci-7' })?.scope).toBe('ci-7');
  });

  it('names the label and the reason', () => {
    expect(() => parseLabels({ 'cnmd.networks': 'a@nope' })).toThrow(/cnmd\.networks="a@nope": nope is not an IP/);
  });
});
