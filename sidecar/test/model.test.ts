import { describe, expect, it } from 'vitest';
import { parseAttachSpec, parseNetworkSpec, parsePublish } from '../src/network/parse.js';
import { parseHealth, parseServiceSpec } from '../src/network/parse-service.js';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  throw new Error('expected an error');
};

describe('network specs', () => {
  it('fills Docker defaults', () => {
    expect(parseNetworkSpec({ name: 'web' })).toEqual({
      name: 'web',
      driver: 'bridge',
      ipv6: false,
      internal: false,
      icc: true,
      mtu: 1500,
      options: {},
    });
  });

  it('keeps what is given', () => {
    const s = parseNetworkSpec({
      name: 'db.net',
      subnet: '10.9.0.0/16',
      gateway: '10.9.0.254',
      ipRange: '10.9.1.0/24',
      ipv6: true,
      subnet6: 'fd00:9::/64',
      internal: true,
      icc: false,
      mtu: 1450,
    });
    expect(s).toMatchObject({ subnet: '10.9.0.0/16', gateway: '10.9.0.254', subnet6: 'fd00:9::/64', mtu: 1450 });
  });

  it.each([
    [{}, /name is required/],
    [{ name: '-bad' }, /not a valid name/],
    [{ name: 'a'.repeat(64) }, /not a valid name/],
    [{ name: 'x', driver: 'Not A Driver' }, /not a driver name/],
    [{ name: 'x', mtu: 10 }, /mtu/],
    [{ name: 'x', subnet: 'ten' }, /not a CIDR/],
    [{ name: 'x', gateway: '10.0.0.1' }, /need a subnet/],
    [{ name: 'x', subnet6: 'fd00::/64' }, /ipv6: true/],
    [{ name: 'x', internal: 'yes' }, /true or false/],
    [{ name: 'x', colour: 'blue' }, /unknown field/],
    [[], /JSON object/],
    [null, /JSON object/],
  ])('refuses %j', (body, why) => {
    expect(codeOf(() => parseNetworkSpec(body))).toBe('API_INVALID_ARGUMENT');
    expect(() => parseNetworkSpec(body)).toThrow(why);
  });
});

describe('attach specs', () => {
  it('takes a sandbox’s own DNS settings, as docker run’s', () => {
    const s = parseAttachSpec({
      sandbox: 'sb1',
      network: 'web',
      dns: ['10.0.0.2', 'fd00::53', '10.0.0.2'],
      dnsSearch: ['corp.test'],
      dnsOptions: ['ndots:2', 'edns0'],
    });
    expect(s.dns).toEqual({ servers: ['10.0.0.2', 'fd00::53'], search: ['corp.test'], options: ['ndots:2', 'edns0'] });
    expect(parseAttachSpec({ sandbox: 'sb1', network: 'web' }).dns).toBeUndefined();
  });

  it('takes publish in Docker syntax and as objects', () => {
    const s = parseAttachSpec({
      sandbox: 'sb1',
      network: 'web',
      name: 'api',
      aliases: ['api.v1', 'api', 'api'],
      publish: ['8080:80', '127.0.0.1:5353:53/udp', { hostPort: 9000, port: 90 }],
    });
    expect(s.aliases).toEqual(['api.v1', 'api']);
    expect(s.publish).toEqual([
      { hostPort: 8080, port: 80, proto: 'tcp' },
      { hostPort: 5353, port: 53, proto: 'udp', hostIp: '127.0.0.1' },
      { hostPort: 9000, port: 90, proto: 'tcp' },
    ]);
  });

  it.each([
    ['80:80', { hostPort: 80, port: 80, proto: 'tcp' }],
    ['[::1]:8053:53/udp', { hostPort: 8053, port: 53, proto: 'udp', hostIp: '::1' }],
  ])('parses -p %s', (s, want) => {
    expect(parsePublish(s)).toEqual(want);
  });

  it.each([
    [{ network: 'web' }, /sandbox is required/],
    [{ sandbox: 'x' }, /network is required/],
    [{ sandbox: 'x', network: 'n', aliases: ['bad alias'] }, /DNS names/],
    [{ sandbox: 'x', network: 'n', ip: '10.0.0.300' }, /IPv4/],
    [{ sandbox: 'x', network: 'n', ip6: '10.0.0.3' }, /IPv6/],
    [{ sandbox: 'x', network: 'n', mac: '02:00:00:00:00' }, /MAC/],
    [{ sandbox: 'x', network: 'n', ifname: 'a-very-long-ifname' }, /interface name/],
    // The kernel refuses these names (dev_valid_name): refused here, before an address is taken.
    [{ sandbox: 'x', network: 'n', ifname: '.' }, /interface name/],
    [{ sandbox: 'x', network: 'n', ifname: '..' }, /interface name/],
    [{ sandbox: 'x', network: 'n', ifname: 'all' }, /interface name/],
    [{ sandbox: 'x', network: 'n', ifname: 'default' }, /interface name/],
    [{ sandbox: 'x', network: 'n', publish: ['999.1.1.1:8080:80'] }, /HOSTIP/],
    [{ sandbox: 'x', network: 'n', publish: ['[1:::2]:8080:80'] }, /HOSTIP/],
    [{ sandbox: 'x', network: 'n', publish: [{ hostIp: '10.0.0.256', hostPort: 8080, port: 80 }] }, /HOSTIP/],
    [{ sandbox: 'x', network: 'n', publish: ['80'] }, /HOSTPORT:PORT/],
    [{ sandbox: 'x', network: 'n', publish: ['70000:80'] }, /HOSTPORT:PORT/],
    [{ sandbox: 'x', network: 'n', publish: ['80:80/sctp'] }, /HOSTPORT:PORT/],
    [{ sandbox: 'x\0y', network: 'n' }, /sandbox/],
    [{ sandbox: 'x', network: 'n', dns: ['dns.google'] }, /dns must be a list of at most 32 IP addresses/],
    [{ sandbox: 'x', network: 'n', dns: '10.0.0.2' }, /dns must be a list/],
    [{ sandbox: 'x', network: 'n', dnsSearch: ['bad domain'] }, /domain names/],
    [{ sandbox: 'x', network: 'n', dnsOptions: ['ndots=2'] }, /resolv.conf options/],
    [{ sandbox: 'x', network: 'n', dnsOptions: ['ndots:2\nnameserver 1.2.3.4'] }, /resolv.conf options/],
  ])('refuses %j', (body, why) => {
    expect(codeOf(() => parseAttachSpec(body))).toBe('API_INVALID_ARGUMENT');
    expect(() => parseAttachSpec(body)).toThrow(why);
  });
});

describe('service specs', () => {
  it('fills defaults and parses ports', () => {
    expect(
      parseServiceSpec({ name: 'web', network: 'n', ports: ['http=80/tcp', '8053:53/udp', { port: 443 }] }),
    ).toEqual({
      name: 'web',
      network: 'n',
      scheduler: 'rr',
      mode: 'vip',
      ports: [
        { name: 'http', proto: 'tcp', port: 80 },
        { proto: 'udp', port: 8053, targetPort: 53 },
        { proto: 'tcp', port: 443 },
      ],
    });
  });

  it.each([
    [{ network: 'n' }, /name is required/],
    [{ name: 'w' }, /network is required/],
    [{ name: 'w', network: 'n', scheduler: 'fast' }, /rr, wrr, lc or sh/],
    [{ name: 'w', network: 'n', mode: 'anycast' }, /vip or dnsrr/],
    [{ name: 'w', network: 'n', mode: 'dnsrr', vip: '10.0.0.9' }, /no VIP/],
    [{ name: 'w', network: 'n', ports: ['80/sctp'] }, /PORT/],
    [{ name: 'w', network: 'n', ports: ['80', '80/tcp'] }, /twice/],
    [{ name: 'w', network: 'n', vip: 'ten' }, /not an IPv4 address/],
    [{ name: 'w', network: 'n', vip6: '10.0.0.9' }, /not an IPv6 address/],
    [{ name: 'w', network: 'n', mode: 'dnsrr', publish: ['8080:80'] }, /needs mode vip/],
    [{ name: 'w', network: 'n', ports: ['80/tcp'], publish: ['8080:81'] }, /no port 81\/tcp/],
    [{ name: 'w', network: 'n', health: 'icmp:80' }, /expected tcp:PORT/],
    [{ name: 'w', network: 'n', health: 'tcp:80/x' }, /expected tcp:PORT/],
    [{ name: 'w', network: 'n', health: 'tcp:80,interval=2' }, /duration/],
    [{ name: 'w', network: 'n', health: 'tcp:80,rise=0' }, /count from 1/],
    [{ name: 'w', network: 'n', health: 'tcp:80,every=2s' }, /unknown option/],
    [{ name: 'w', network: 'n', health: 'tcp:80,interval=1s,timeout=2s' }, /longer than the interval/],
    [{ name: 'w', network: 'n', health: { type: 'tcp' } }, /expected tcp:PORT/],
    // <name>.v6 is where the load balancer keeps a service's IPv6 VIP: no service may take it.
    [{ name: 'web.v6', network: 'n' }, /not ending in .v6/],
    [{ name: 'w'.repeat(61), network: 'n' }, /at most 60/],
  ])('refuses %j', (body, why) => {
    expect(codeOf(() => parseServiceSpec(body))).toBe('API_INVALID_ARGUMENT');
    expect(() => parseServiceSpec(body)).toThrow(why);
  });

  it('parses health checks, as text and as an object', () => {
    expect(parseHealth('tcp:80')).toEqual({
      type: 'tcp',
      port: 80,
      intervalMs: 5000,
      timeoutMs: 1000,
      rise: 2,
      fall: 3,
    });
    expect(parseHealth('http:8080/healthz,interval=2s,timeout=500ms,rise=1,fall=2')).toEqual({
      type: 'http',
      port: 8080,
      path: '/healthz',
      intervalMs: 2000,
      timeoutMs: 500,
      rise: 1,
      fall: 2,
    });
    const spec = parseServiceSpec({
      name: 'w',
      network: 'n',
      health: { type: 'http', port: 80, intervalMs: 300, timeoutMs: 200 },
    });
    expect(spec.health).toEqual({
      type: 'http',
      port: 80,
      path: '/',
      intervalMs: 300,
      timeoutMs: 200,
      rise: 2,
      fall: 3,
    });
  });

  it('attach takes defaultRoute as a boolean only', () => {
    expect(parseAttachSpec({ sandbox: 's', network: 'n', defaultRoute: true }).defaultRoute).toBe(true);
    expect(codeOf(() => parseAttachSpec({ sandbox: 's', network: 'n', defaultRoute: 'yes' }))).toBe(
      'API_INVALID_ARGUMENT',
    );
  });

  it('attach takes a service and a weight, and a weight only with a service', () => {
    expect(parseAttachSpec({ sandbox: 's', network: 'n', service: 'web', weight: 0 })).toMatchObject({
      service: 'web',
      weight: 0,
    });
    expect(() => parseAttachSpec({ sandbox: 's', network: 'n', weight: 2 })).toThrow(/needs a service/);
  });
});
