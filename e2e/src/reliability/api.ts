// Part 4 of the reliability campaign (#16): the admin API under hostile input. Each case is sent
// on its own and must get its stable status and code, and change nothing: the state files, the
// host's links, addresses and nft ruleset, the load-balancer sandbox's, and the attached
// sandbox's are byte-identical before and after. The daemon must never exit. Slow clients
// (slowloris on headers and on a body) run beside the others and must be closed by the server.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestHost } from '../daemon-harness.js';
import { Netns, run } from '../netns.js';
import { alive, stateBytes } from './census.js';
import { connectIn } from './netns-socket.js';
import { type RawOutcome, type RawRequest, rawHttp, unixConnect } from './raw-http.js';

export interface ApiOptions {
  /** Concurrent connections in the crowd cases (1,000). */
  concurrent?: number;
  /** The kernel's listings are compared after every this many cases (1); the state files after each. */
  kernelEvery?: number;
  log?: (line: string) => void;
}

export interface ApiResult {
  cases: number;
  /** Cases after which something of the daemon's state or the kernel's differed. */
  stateChanges: number;
  /** Cases that got another status or code than theirs. */
  wrong: number;
  /** Times the daemon was found dead. */
  exits: number;
  problems: string[];
}

interface Case {
  name: string;
  send: () => Promise<RawOutcome>;
  /** undefined when the outcome is right, else what is wrong with it. */
  want: (o: RawOutcome) => string | undefined;
  /** Sent beside the others (slow clients): their outcome is awaited at the end. */
  slow?: boolean;
}

const TOKEN = 'reliability-token-0123456789abcdef';
const TCP_PORT = 2375;
const SUBNET = '10.102.0';

const show = (o: RawOutcome) =>
  `${o.status ?? '-'} ${o.code ?? ''}${o.error ? ` (${o.error})` : ''}${o.closedMs !== undefined ? ` closed at ${o.closedMs} ms` : ''}`;

/** The status, and the code when one is named (one of several, separated by |). */
const is =
  (status: number | number[], code?: string) =>
  (o: RawOutcome): string | undefined => {
    const statuses = Array.isArray(status) ? status : [status];
    const ok =
      o.status !== undefined && statuses.includes(o.status) && (!code || code.split('|').includes(o.code ?? ''));
    return ok ? undefined : `want ${statuses.join('|')} ${code ?? ''}, got ${show(o)}`;
  };

export async function runApi(o: ApiOptions = {}): Promise<ApiResult> {
  const log = o.log ?? (() => {});
  const crowd = o.concurrent ?? 1000;
  const res: ApiResult = { cases: 0, stateChanges: 0, wrong: 0, exits: 0, problems: [] };
  const dir = await mkdtemp(join(tmpdir(), 'cnmd-rel-api-'));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const made: Netns[] = [];
  const host = await TestHost.start({
    args: ['--api-tcp', `127.0.0.1:${TCP_PORT}`, '--api-token-file', tokenFile],
  });
  try {
    await host.ok('network', 'create', 'api', '--subnet', `${SUBNET}.0/24`);
    await host.ok('service', 'create', 'apisvc', '--network', 'api', '--port', '80/tcp');
    const keeper = await Netns.create('cnmd-rel');
    const spare = await Netns.create('cnmd-rel');
    made.push(keeper, spare);
    const kept = await host.json<{ ip: string; mac: string }>(
      'attach',
      keeper.name,
      ...['--network', 'api', '--name', 'keeper', '--service', 'apisvc', '--publish', '8080:80/tcp'],
    );
    const pid = host.pid!;
    const net = (await host.json<{ id: string }>('network', 'inspect', 'api')).id;
    const lb = `cnmd-lb-${net.slice(0, 10)}`;

    // One shell per namespace: the links, IPv4 addresses and nft ruleset of each.
    const listing = 'ip -o link; ip -o -4 addr; nft list ruleset';
    const kernel = async () =>
      (
        await Promise.all([
          host.ns.exec('sh', ['-c', listing]),
          run('ip', ['netns', 'exec', lb, 'sh', '-c', listing]),
          keeper.exec('sh', ['-c', listing]),
          spare.exec('sh', ['-c', listing]),
          run('ls', ['/run/netns']).then((l) =>
            l
              .split('\n')
              .filter((n) => n === lb)
              .join(),
          ),
        ])
      ).join('\n==\n');

    const unix = unixConnect(host.socket);
    const tcp = () => connectIn(host.ns.path, '127.0.0.1', TCP_PORT);
    const req = (method: string, path: string, body?: string | Buffer, headers: string[] = []): RawRequest => ({
      head: [
        `${method} ${path} HTTP/1.1`,
        'Host: cnmd',
        'Content-Type: application/json',
        'Connection: close',
        ...(body !== undefined ? [`Content-Length: ${Buffer.byteLength(body)}`] : []),
        ...headers,
      ].join('\r\n'),
      ...(body !== undefined ? { body } : {}),
    });
    const send =
      (method: string, path: string, body?: unknown, headers: string[] = [], via = unix) =>
      () =>
        rawHttp(
          via,
          req(
            method,
            path,
            typeof body === 'string' || Buffer.isBuffer(body)
              ? body
              : body === undefined
                ? undefined
                : JSON.stringify(body),
            headers,
          ),
        );

    const cases: Case[] = [];
    const add = (name: string, s: () => Promise<RawOutcome>, want: Case['want'], slow = false) =>
      cases.push({ name, send: s, want, slow });
    const bad = is(400, 'API_BAD_REQUEST|API_INVALID_ARGUMENT');
    const invalid = is(400, 'API_INVALID_ARGUMENT');

    // Malformed JSON, on each path that takes a body.
    const malformed: [string, string | Buffer][] = [
      ['an open brace', '{'],
      ['a cut string', '{"name":"x'],
      ['a cut array', '[1,2'],
      ['a trailing comma', '{"name":"x",}'],
      ['single quotes', "{'name':'x'}"],
      ['NaN', '{"mtu":NaN}'],
      ['a NUL byte', '\u0000'],
      ['bytes that are not UTF-8', Buffer.from([0xff, 0xfe, 0x7b, 0x7d, 0xc3])],
      ['a second value behind', '{"name":"x"} {"name":"y"}'],
      ['an empty body', ''],
      ['null', 'null'],
      ['a number', '123'],
      ['a string', '"x"'],
      ['an array', '[]'],
      ['true', 'true'],
    ];
    for (const path of ['/v1/networks', '/v1/endpoints', '/v1/services']) {
      for (const [what, body] of malformed) add(`POST ${path}: ${what}`, send('POST', path, body), bad);
    }

    // Deeply nested JSON.
    const deep = (n: number, open: string, close: string, inner = '1') => open.repeat(n) + inner + close.repeat(n);
    add('nested arrays, 200,000 deep', send('POST', '/v1/networks', deep(200_000, '[', ']', '')), bad);
    add('nested objects, 100,000 deep', send('POST', '/v1/networks', deep(100_000, '{"a":', '}')), bad);
    add('an unclosed nest, 500,000 deep', send('POST', '/v1/networks', '['.repeat(500_000)), bad);
    add(
      'network options nested 100,000 deep',
      send('POST', '/v1/networks', `{"name":"deep","options":${deep(100_000, '{"a":', '}')}}`),
      invalid,
    );
    add(
      'aliases nested 100,000 deep',
      send(
        'POST',
        '/v1/endpoints',
        `{"sandbox":"${spare.name}","network":"api","aliases":${deep(100_000, '[', ']', '"a"')}}`,
      ),
      invalid,
    );
    add(
      'a published port nested 100,000 deep',
      send(
        'POST',
        '/v1/endpoints',
        `{"sandbox":"${spare.name}","network":"api","publish":[${deep(100_000, '{"port":', '}')}]}`,
      ),
      invalid,
    );
    add(
      'a health check nested 100,000 deep',
      send('POST', '/v1/services', `{"name":"h","network":"api","health":${deep(100_000, '{"type":', '}')}}`),
      invalid,
    );
    add(
      'service ports nested 100,000 deep',
      send('POST', '/v1/services', `{"name":"h","network":"api","ports":${deep(100_000, '[', ']', '"80/tcp"')}}`),
      invalid,
    );

    // Bodies past the limit (1 MiB): 413 before the rest is read, and the connection closed.
    const MiB = 1024 * 1024;
    const past = (o: RawOutcome) =>
      is(413, 'API_TOO_LARGE')(o) ??
      (o.closedMs === undefined ? 'the connection stayed open with the rest of the body unread' : undefined);
    add(
      'a declared 1 GiB body, streamed',
      () =>
        rawHttp(unix, {
          head: 'POST /v1/networks HTTP/1.1\r\nHost: cnmd\r\nContent-Type: application/json\r\nContent-Length: 1073741824',
          stream: { bytes: 1024 * MiB, chunk: 64 * 1024, delayMs: 0 },
          untilClose: true,
          timeoutMs: 15_000,
        }),
      (o) => past(o) ?? (o.sentBytes > 16 * MiB ? `it read ${o.sentBytes} bytes first` : undefined),
    );
    add(
      'a declared 1 GiB body, nothing sent',
      () =>
        rawHttp(unix, {
          head: 'POST /v1/endpoints HTTP/1.1\r\nHost: cnmd\r\nContent-Type: application/json\r\nContent-Length: 1073741824',
          untilClose: true,
          timeoutMs: 15_000,
        }),
      past,
    );
    add(
      '2 MiB of JSON, chunked',
      () =>
        rawHttp(unix, {
          head: 'POST /v1/services HTTP/1.1\r\nHost: cnmd\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked',
          body: Buffer.concat([Buffer.from(`200000\r\n`), Buffer.alloc(0x200000, 0x20), Buffer.from('\r\n0\r\n\r\n')]),
          untilClose: true,
          timeoutMs: 15_000,
        }),
      past,
    );
    add('1 MiB + 1 byte', send('POST', '/v1/networks', `${' '.repeat(MiB - 1)}{}`), is(413, 'API_TOO_LARGE'));
    add('exactly 1 MiB', send('POST', '/v1/networks', `${' '.repeat(MiB - 2)}{}`), invalid);
    add(
      'a negative Content-Length',
      () => rawHttp(unix, { head: 'POST /v1/networks HTTP/1.1\r\nHost: cnmd\r\nContent-Length: -1', body: '{}' }),
      is(400),
    );
    add(
      'a Content-Length of 20 digits',
      () =>
        rawHttp(unix, {
          head: 'POST /v1/networks HTTP/1.1\r\nHost: cnmd\r\nContent-Length: 99999999999999999999',
          body: '{}',
        }),
      is([400, 413]),
    );
    add(
      'two Content-Lengths',
      () =>
        rawHttp(unix, {
          head: 'POST /v1/networks HTTP/1.1\r\nHost: cnmd\r\nContent-Length: 2\r\nContent-Length: 40',
          body: '{}',
        }),
      is(400),
    );
    add('a 100 KiB header', send('GET', '/v1/networks', undefined, [`X-Big: ${'a'.repeat(100 * 1024)}`]), (o) =>
      o.status === 431 || (o.status === undefined && o.closedMs !== undefined) ? undefined : `got ${show(o)}`,
    );

    // Wrong types, negative and huge numbers.
    const netBodies: Record<string, unknown>[] = [
      { name: 123 },
      { name: [] },
      { name: {} },
      { name: true },
      { name: 'n1', subnet: 5 },
      { name: 'n1', subnet: ['10.0.0.0/24'] },
      { name: 'n1', ipv6: 'yes' },
      { name: 'n1', internal: 1 },
      { name: 'n1', mtu: '1500' },
      { name: 'n1', mtu: 1.5 },
      { name: 'n1', mtu: -1 },
      { name: 'n1', mtu: 0 },
      { name: 'n1', mtu: 1e308 },
      { name: 'n1', options: 'x' },
      { name: 'n1', options: [] },
      { name: 'n1', options: { a: 1 } },
      { name: 'n1', driver: 5 },
      { name: 'n1', scope: 'planet' },
      { name: 'n1', gateway: 'x' },
      { name: 'n1', subnet: '10.0.0.0/33' },
      { name: 'n1', subnet: '300.1.1.0/24' },
      { name: 'n1', subnet: '10.0.0.0/8/8' },
      { name: 'n1', subnet: '10.110.0.0/24', gateway: '10.111.0.1' },
      { name: 'n1', subnet: '10.110.0.0/24', ipRange: '10.111.0.0/25' },
      { name: 'n1', subnet6: 'fd00::/64' },
      { name: 'n1', unknown: 1 },
    ];
    for (const b of netBodies) {
      add(`POST /v1/networks ${JSON.stringify(b).slice(0, 80)}`, send('POST', '/v1/networks', b), is(400));
    }
    // JSON.parse makes __proto__ an own key (no prototype is set): an unknown field.
    add('POST /v1/networks with __proto__', send('POST', '/v1/networks', '{"name":"n1","__proto__":{"x":1}}'), invalid);
    add('POST /v1/networks with constructor', send('POST', '/v1/networks', '{"name":"n1","constructor":{}}'), invalid);
    // Numbers as the JSON text gives them: past a double (Infinity), past 2^53.
    add('POST /v1/networks mtu 1e400', send('POST', '/v1/networks', '{"name":"n1","mtu":1e400}'), invalid);
    add('POST /v1/networks mtu 2^53+1', send('POST', '/v1/networks', '{"name":"n1","mtu":9007199254740993}'), invalid);
    const ep = (extra: Record<string, unknown>) => ({ sandbox: spare.name, network: 'api', ...extra });
    const epBodies: Record<string, unknown>[] = [
      { sandbox: 5, network: 'api' },
      { sandbox: [], network: 'api' },
      ep({ network: 5 }),
      ep({ aliases: 'a' }),
      ep({ aliases: [1] }),
      ep({ aliases: [{}] }),
      ep({ service: 'apisvc', weight: -1 }),
      ep({ service: 'apisvc', weight: 65536 }),
      ep({ service: 'apisvc', weight: 1.5 }),
      ep({ service: 'apisvc', weight: '1' }),
      ep({ weight: 1 }),
      ep({ publish: 'x' }),
      ep({ publish: [5] }),
      ep({ publish: [{ hostPort: -1, port: 80 }] }),
      ep({ publish: [{ hostPort: 1e20, port: 80 }] }),
      ep({ publish: [{ hostPort: 8081, port: 80, proto: 'sctp' }] }),
      ep({ publish: [{ hostPort: 8081, port: 80, hostIp: {} }] }),
      ep({ publish: ['999.1.1.1:8081:80'] }),
      ep({ publish: ['8081:0'] }),
      ep({ defaultRoute: 'yes' }),
      ep({ dns: '192.0.2.1' }),
      ep({ dns: [1] }),
      ep({ dnsOptions: ['ndots:99999'] }),
      ep({ dnsSearch: Array.from({ length: 40 }, (_, i) => `d${i}.test`) }),
      ep({ mac: 5 }),
      ep({ mac: '02:42:ac:11:00' }),
      ep({ ip: 5 }),
      ep({ ip: `${SUBNET}.300` }),
      ep({ ip: '::1' }),
      ep({ ip6: `${SUBNET}.9` }),
      ep({ hostname: 'a b' }),
      ep({ unknown: true }),
    ];
    for (const b of epBodies)
      add(`POST /v1/endpoints ${JSON.stringify(b).slice(0, 100)}`, send('POST', '/v1/endpoints', b), is(400));
    add(
      'POST /v1/endpoints weight 2^53+1',
      send(
        'POST',
        '/v1/endpoints',
        `{"sandbox":"${spare.name}","network":"api","service":"apisvc","weight":9007199254740993}`,
      ),
      invalid,
    );
    add(
      'POST /v1/endpoints weight 1e400',
      send('POST', '/v1/endpoints', `{"sandbox":"${spare.name}","network":"api","service":"apisvc","weight":1e400}`),
      invalid,
    );
    const svc = (extra: Record<string, unknown>) => ({ name: 's1', network: 'api', ...extra });
    const svcBodies: Record<string, unknown>[] = [
      { name: 5, network: 'api' },
      svc({ network: 5 }),
      svc({ ports: '80' }),
      svc({ ports: [80] }),
      svc({ ports: ['99999/tcp'] }),
      svc({ ports: [{ port: 80, proto: 'sctp' }] }),
      svc({ scheduler: 5 }),
      svc({ scheduler: 'xx' }),
      svc({ mode: 'x' }),
      svc({ health: 5 }),
      svc({ health: 'tcp:0' }),
      svc({ health: 'http:80,interval=0s' }),
      svc({ health: 'tcp:80,rise=1e300' }),
      svc({ health: { type: 'icmp' } }),
      svc({ health: { type: 'tcp', port: 80, intervalMs: -1 } }),
      svc({ vip: 5 }),
      svc({ vip: '192.0.2.1' }),
      svc({ vip: `${SUBNET}.255` }),
      svc({ vip: `${SUBNET}.0` }),
      svc({ vip6: 'fd00::1' }),
      svc({ publish: ['x'] }),
      svc({ unknown: 1 }),
    ];
    for (const b of svcBodies)
      add(`POST /v1/services ${JSON.stringify(b).slice(0, 100)}`, send('POST', '/v1/services', b), (x) =>
        x.status !== undefined && x.status >= 400 && x.status < 500 ? undefined : `want 4xx, got ${show(x)}`,
      );

    // Names with /, .., NUL, 300 characters, and other things a name cannot be.
    const names = ['a/b', '..', '.', 'a\u0000b', 'a'.repeat(300), 'ä', ' a', '-a', 'a\nb', ''];
    for (const n of names) {
      const label = JSON.stringify(n).slice(0, 20);
      add(`a network named ${label}`, send('POST', '/v1/networks', { name: n }), invalid);
      add(`a container named ${label}`, send('POST', '/v1/endpoints', ep({ name: n })), invalid);
      add(`a service named ${label}`, send('POST', '/v1/services', svc({ name: n })), invalid);
      add(`an alias ${label}`, send('POST', '/v1/endpoints', ep({ aliases: [n] })), invalid);
      add(`a hostname ${label}`, send('POST', '/v1/endpoints', ep({ hostname: n })), invalid);
      // (-a is a name the kernel takes for an interface)
      if (n !== '-a') add(`an ifname ${label}`, send('POST', '/v1/endpoints', ep({ ifname: n })), invalid);
      add(
        `the network of an attach named ${label}`,
        send('POST', '/v1/endpoints', { sandbox: spare.name, network: n }),
        is([400, 404]),
      );
      const seg = encodeURIComponent(n);
      add(`GET /v1/networks/${label}`, send('GET', `/v1/networks/${seg}`), is(404));
      add(`DELETE /v1/networks/${label}`, send('DELETE', `/v1/networks/${seg}`), is(404));
      add(`GET /v1/services/${label}`, send('GET', `/v1/services/${seg}`), is(404));
      add(`DELETE /v1/services/${label}`, send('DELETE', `/v1/services/${seg}`), is(404));
      add(`GET /v1/containers/${label}`, send('GET', `/v1/containers/${seg}`), is(404));
      add(`DELETE /v1/endpoints?sandbox=${label}`, send('DELETE', `/v1/endpoints?sandbox=${seg}`), is([400, 404]));
    }
    // Interface names the kernel refuses, or that are taken.
    for (const ifname of ['all', 'default', 'lo', 'a:b', 'a b', 'a'.repeat(16)]) {
      add(`an ifname ${ifname}`, send('POST', '/v1/endpoints', ep({ ifname })), is([400, 409]));
    }
    add('a path with a bad %-escape', send('GET', '/v1/networks/%ZZ'), is(400, 'API_BAD_REQUEST'));
    add('an unknown path', send('GET', '/v2/networks'), is(404, 'API_NOT_FOUND'));
    add('the root', send('GET', '/'), is(404, 'API_NOT_FOUND'));
    add('PUT /v1/networks', send('PUT', '/v1/networks', '{}'), is(405, 'API_METHOD_NOT_ALLOWED'));
    add('DELETE /v1/networks', send('DELETE', '/v1/networks'), is(405, 'API_METHOD_NOT_ALLOWED'));
    add('DELETE /v1/endpoints without a sandbox', send('DELETE', '/v1/endpoints'), is(400));
    add(
      'DELETE the keeper on a network that does not exist',
      send('DELETE', `/v1/endpoints?sandbox=${keeper.name}&network=nope`),
      is(404, 'SIDECAR_NETWORK_NOT_FOUND'),
    );
    add(
      'DELETE the keeper on a network named with a NUL',
      send('DELETE', `/v1/endpoints?sandbox=${keeper.name}&network=api%00`),
      is(404, 'SIDECAR_NETWORK_NOT_FOUND'),
    );

    // Sandboxes outside the places where they live, or no namespace at all.
    const paths = [
      '/tmp',
      '/tmp/x',
      '/etc/hostname',
      '/etc/shadow',
      '/proc/self/ns/net',
      '/proc/thread-self/ns/net',
      '/proc/0/ns/net',
      '/proc/99999999/ns/net',
      `/proc/${pid}/ns/mnt`,
      '/run/netns',
      '/run/netns/',
      '/run/netns/no-such-namespace',
      '/run/docker/netns/../../../etc/shadow',
      '/run/netns/../../etc/shadow',
      '/dev/null',
      '/dev/zero',
      '/sys/kernel',
      'netns/x',
      '../x',
      '.',
      '..',
      'a b',
      `/run/netns/${spare.name}/`,
      `/run/netns//${spare.name}/..`,
    ];
    for (const p of paths) {
      add(`the sandbox ${JSON.stringify(p)}`, send('POST', '/v1/endpoints', { sandbox: p, network: 'api' }), (x) =>
        (x.status === 400 && x.code === 'SIDECAR_NETNS_INVALID') ||
        (x.status === 400 && x.code === 'API_INVALID_ARGUMENT')
          ? undefined
          : `want 400 SIDECAR_NETNS_INVALID, got ${show(x)}`,
      );
    }
    add(
      "the daemon's own namespace",
      send('POST', '/v1/endpoints', { sandbox: `/proc/${pid}/ns/net`, network: 'api' }),
      is(403, 'SIDECAR_NETNS_HOST'),
    );
    add(
      "the daemon's own namespace by name",
      send('POST', '/v1/endpoints', { sandbox: host.ns.name, network: 'api' }),
      is(403, 'SIDECAR_NETNS_HOST'),
    );

    // Requests that are well formed but clash with what exists.
    add('the keeper attached again', send('POST', '/v1/endpoints', { sandbox: keeper.name, network: 'api' }), is(409));
    add("the keeper's name for another", send('POST', '/v1/endpoints', ep({ name: 'keeper' })), is(409));
    add("the keeper's address", send('POST', '/v1/endpoints', ep({ ip: kept.ip })), is(409));
    add("the gateway's address", send('POST', '/v1/endpoints', ep({ ip: `${SUBNET}.1` })), is([400, 409]));
    add('the broadcast address', send('POST', '/v1/endpoints', ep({ ip: `${SUBNET}.255` })), is([400, 409]));
    add('an address outside the subnet', send('POST', '/v1/endpoints', ep({ ip: '10.103.0.5' })), is([400, 409]));
    add("the keeper's MAC", send('POST', '/v1/endpoints', ep({ mac: kept.mac })), is([400, 409]));
    add('a broadcast MAC', send('POST', '/v1/endpoints', ep({ mac: 'ff:ff:ff:ff:ff:ff' })), is(400));
    add('a multicast MAC', send('POST', '/v1/endpoints', ep({ mac: '01:00:5e:00:00:01' })), is(400));
    add("the keeper's host port", send('POST', '/v1/endpoints', ep({ publish: ['8080:80'] })), is(409));
    add('a service of no network', send('POST', '/v1/endpoints', ep({ service: 'nosuch' })), is(404));
    add(
      'a network that does not exist',
      send('POST', '/v1/endpoints', { sandbox: spare.name, network: 'nope' }),
      is(404),
    );
    add('apisvc again', send('POST', '/v1/services', svc({ name: 'apisvc' })), is(409));
    add("a VIP that is the keeper's address", send('POST', '/v1/services', svc({ vip: kept.ip })), is(409));
    add('a network named api again', send('POST', '/v1/networks', { name: 'api' }), is(409));
    add(
      'a subnet that overlaps api',
      send('POST', '/v1/networks', { name: 'n2', subnet: `${SUBNET}.128/25` }),
      is(409),
    );
    add(
      'a macvlan network on a parent that does not exist',
      send('POST', '/v1/networks', {
        name: 'mv',
        driver: 'macvlan',
        subnet: '10.104.0.0/24',
        options: { parent: 'nope0' },
      }),
      is([400, 404]),
    );
    add('an unknown driver', send('POST', '/v1/networks', { name: 'n3', driver: 'overlay9' }), is(400));
    add('removing api while in use', send('DELETE', '/v1/networks/api'), is(409, 'SIDECAR_NETWORK_IN_USE'));
    add('removing apisvc with a task', send('DELETE', '/v1/services/apisvc'), is(409, 'SIDECAR_SERVICE_IN_USE'));
    add(
      'a duplicate key whose last value is bad',
      send('POST', '/v1/networks', '{"name":"ok1","name":"a/b"}'),
      invalid,
    );

    // The TCP listener: nothing without the token.
    const viaTcp = (method: string, path: string, body?: unknown, headers: string[] = []) =>
      send(method, path, body, headers, tcp);
    add('TCP: no token', viaTcp('GET', '/v1/networks'), is(401, 'API_UNAUTHORIZED'));
    add(
      'TCP: no token, a network created',
      viaTcp('POST', '/v1/networks', { name: 'tcp1' }),
      is(401, 'API_UNAUTHORIZED'),
    );
    add(
      'TCP: no token, the keeper detached',
      viaTcp('DELETE', `/v1/endpoints?sandbox=${keeper.name}`),
      is(401, 'API_UNAUTHORIZED'),
    );
    add('TCP: a wrong token', viaTcp('GET', '/v1/networks', undefined, ['Authorization: Bearer nope']), is(401));
    add(
      'TCP: the token and more',
      viaTcp('GET', '/v1/networks', undefined, [`Authorization: Bearer ${TOKEN}x`]),
      is(401),
    );
    add(
      'TCP: a prefix of the token',
      viaTcp('GET', '/v1/networks', undefined, [`Authorization: Bearer ${TOKEN.slice(0, 10)}`]),
      is(401),
    );
    add(
      'TCP: the token as Basic',
      viaTcp('GET', '/v1/networks', undefined, [
        `Authorization: Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`,
      ]),
      is(401),
    );
    add('TCP: an empty Bearer', viaTcp('GET', '/v1/networks', undefined, ['Authorization: Bearer ']), is(401));
    add(
      'TCP: two Authorization headers, the second right',
      viaTcp('GET', '/v1/networks', undefined, ['Authorization: Bearer nope', `Authorization: Bearer ${TOKEN}`]),
      is([400, 401]),
    );
    add(
      'TCP: a declared 1 GiB body without the token',
      () =>
        rawHttp(tcp, {
          head: 'POST /v1/networks HTTP/1.1\r\nHost: cnmd\r\nContent-Length: 1073741824',
          stream: { bytes: 1024 * MiB, chunk: 64 * 1024, delayMs: 0 },
          untilClose: true,
          timeoutMs: 15_000,
        }),
      (x) =>
        is(401, 'API_UNAUTHORIZED')(x) ??
        (x.closedMs === undefined ? 'the connection stayed open with the body unread' : undefined) ??
        (x.sentBytes > 16 * MiB ? `it read ${x.sentBytes} bytes first` : undefined),
    );
    add(
      'TCP: the right token (the listener works)',
      viaTcp('GET', '/v1/health', undefined, [`Authorization: Bearer ${TOKEN}`]),
      is(200),
    );

    // Slow clients: a byte a second, in the headers and in a body. A timeout must close them.
    const slowloris = (via: () => Promise<import('node:net').Socket>, head: string, drip: string) => async () => {
      const s = await via();
      const t0 = Date.now();
      return new Promise<RawOutcome>((resolve) => {
        let got = '';
        let i = 0;
        s.write(head);
        const timer = setInterval(() => {
          if (s.destroyed || Date.now() - t0 > 70_000) return stop();
          s.write(drip[i++ % drip.length]!);
        }, 1000);
        const stop = () => {
          clearInterval(timer);
          s.destroy();
          const m = /^HTTP\/1\.1 (\d+)/.exec(got);
          resolve({ ...(m ? { status: Number(m[1]) } : {}), sentBytes: i, ...(closed ? { closedMs: closed } : {}) });
        };
        let closed: number | undefined;
        s.on('data', (d: Buffer) => (got += d.toString()));
        s.on('close', () => {
          closed = Date.now() - t0;
          stop();
        });
      });
    };
    const closedIn = (ms: number) => (x: RawOutcome) =>
      x.closedMs !== undefined && x.closedMs <= ms ? undefined : `want closed within ${ms} ms, got ${show(x)}`;
    add(
      'slowloris: headers a byte a second',
      slowloris(unix, 'GET /v1/networks HTTP/1.1\r\nHost: cnmd\r\n', 'X-a: b\r\n'),
      closedIn(20_000),
      true,
    );
    add(
      'slowloris: a body a byte a second',
      slowloris(unix, 'POST /v1/networks HTTP/1.1\r\nHost: cnmd\r\nContent-Length: 1000\r\n\r\n', ' '),
      closedIn(45_000),
      true,
    );
    add(
      'slowloris over TCP, without the token',
      slowloris(tcp, 'GET /v1/networks HTTP/1.1\r\nHost: cnmd\r\n', 'X-a: b\r\n'),
      closedIn(20_000),
      true,
    );

    // The crowd: many connections at once.
    const many = (n: number, one: () => Promise<RawOutcome>) => async (): Promise<RawOutcome> => {
      const outs = await Promise.all(Array.from({ length: n }, one));
      const tally = new Map<string, number>();
      for (const x of outs)
        tally.set(
          show(x).replace(/ closed at \d+ ms/, ''),
          (tally.get(show(x).replace(/ closed at \d+ ms/, '')) ?? 0) + 1,
        );
      return { sentBytes: 0, body: JSON.stringify(Object.fromEntries(tally)) };
    };
    const allOf = (status: number) => (x: RawOutcome) => {
      const tally = JSON.parse(x.body ?? '{}') as Record<string, number>;
      return Object.keys(tally).every((k) => k.startsWith(`${status} `)) ? undefined : `got ${x.body}`;
    };
    add(`${crowd} concurrent GET /v1/networks`, many(crowd, send('GET', '/v1/networks')), allOf(200));
    add(
      `${crowd} concurrent bad attaches`,
      many(crowd, send('POST', '/v1/endpoints', ep({ ip: kept.ip }))),
      allOf(409),
    );
    add(
      `${crowd} concurrent requests over TCP without the token`,
      many(crowd, viaTcp('GET', '/v1/networks')),
      allOf(401),
    );
    add(
      `${crowd} connections held open, then a request`,
      async () => {
        const held = await Promise.all(Array.from({ length: crowd }, () => unix().catch(() => undefined)));
        try {
          const t0 = Date.now();
          const r = await send('GET', '/v1/health')();
          return { ...r, body: `${r.body} after ${Date.now() - t0} ms, ${held.filter(Boolean).length} held` };
        } finally {
          for (const s of held) s?.destroy();
        }
      },
      is(200),
    );

    // Run them: the slow ones beside, each other one alone between two snapshots.
    const slow = cases.filter((c) => c.slow).map(async (c) => ({ c, o: await c.send() }));
    // The state files after every case; the kernel's listings (a few processes) after every
    // `kernelEvery` cases, and whenever the state changed.
    const every = o.kernelEvery ?? 1;
    let before = await stateBytes(host);
    let kernelBefore = await kernel();
    let since: string[] = [];
    const quick = cases.filter((x) => !x.slow);
    for (const c of quick) {
      const out = await c.send();
      res.cases++;
      since.push(c.name);
      const wrong = c.want(out);
      if (wrong) {
        res.wrong++;
        res.problems.push(`${c.name}: ${wrong}`);
      }
      const after = await stateBytes(host);
      const changed = after !== before;
      if (changed) {
        res.stateChanges++;
        res.problems.push(`${c.name}: changed the state file:\n${difference(before, after)}`);
        before = after;
      }
      if (changed || since.length >= every || c === quick.at(-1)) {
        const k = await kernel();
        if (k !== kernelBefore) {
          res.stateChanges++;
          const who = since.length > 1 ? `one of ${since.length} cases from ${since[0]} to ${c.name}` : c.name;
          res.problems.push(`${who}: changed the kernel's state:\n${difference(kernelBefore, k)}`);
          kernelBefore = k;
        }
        since = [];
      }
      if (!(await alive(pid))) {
        res.exits++;
        res.problems.push(`${c.name}: the daemon exited: ${host.log.split('\n').slice(-20).join('\n')}`);
        await host.startDaemon();
        before = await stateBytes(host);
        kernelBefore = await kernel();
      }
    }
    log(`api: ${res.cases} cases; waiting for the slow clients`);
    for (const { c, o: out } of await Promise.all(slow)) {
      res.cases++;
      const wrong = c.want(out);
      if (wrong) {
        res.wrong++;
        res.problems.push(`${c.name}: ${wrong}`);
      }
    }
    if ((await stateBytes(host)) !== before || (await kernel()) !== kernelBefore) {
      res.stateChanges++;
      res.problems.push('the slow clients changed the state');
    }
    if (!(await alive(pid))) res.exits++;
    log(`api: ${res.cases} cases, ${res.wrong} wrong, ${res.stateChanges} state change(s), ${res.exits} exit(s)`);
    return res;
  } finally {
    await host.close();
    for (const ns of made) await ns.remove().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

/** The lines of `after` not in `before` and the other way round. */
function difference(before: string, after: string): string {
  const b = new Set(before.split('\n'));
  const a = new Set(after.split('\n'));
  return [
    ...[...b].filter((l) => !a.has(l)).map((l) => `- ${l.slice(0, 200)}`),
    ...[...a].filter((l) => !b.has(l)).map((l) => `+ ${l.slice(0, 200)}`),
  ]
    .slice(0, 20)
    .join('\n');
}
