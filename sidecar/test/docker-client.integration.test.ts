// The engine client over a real unix socket, against a small HTTP server standing in for dockerd.
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { DockerClient } from '../src/docker/client.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function fakeEngine(version: Record<string, string>) {
  const dir = await mkdtemp(join(tmpdir(), 'cnmd-fake-docker-'));
  const socket = join(dir, 'docker.sock');
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    if (req.url === '/version') res.end(JSON.stringify(version));
    else if (req.url?.endsWith('/containers/gone/json')) {
      res.statusCode = 404;
      res.end('{"message":"No such container: gone"}');
    } else if (req.url?.includes('/containers/json')) res.end('[{"Id":"abc"}]');
    else if (req.url?.includes('/events')) {
      res.write('{"Type":"container","Action":"start","Actor":{"ID":"abc"}}\n');
      setTimeout(() => res.end(), 20);
    } else {
      res.statusCode = 500;
      res.end('{"message":"boom"}');
    }
  });
  await new Promise<void>((r) => server.listen(socket, r));
  const client = new DockerClient({ socket });
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  cleanup.push(() => new Promise((r) => server.close(r)));
  cleanup.push(() => client.close());
  return { client, paths };
}

it('speaks the lower of the engine API version and 1.41', async () => {
  const old = await fakeEngine({ ApiVersion: '1.40', MinAPIVersion: '1.12' });
  expect(await old.client.negotiate()).toBe('1.40');
  await old.client.containers({ label: ['cnmd.networks'] });
  expect(old.paths.at(-1)).toMatch(/^\/v1\.40\/containers\/json\?all=false&filters=/);
  const newer = await fakeEngine({ ApiVersion: '1.45', MinAPIVersion: '1.24' });
  expect(await newer.client.negotiate()).toBe('1.41');
});

it('refuses an engine that no longer speaks 1.41', async () => {
  const { client } = await fakeEngine({ ApiVersion: '1.50', MinAPIVersion: '1.44' });
  await expect(client.negotiate()).rejects.toMatchObject({ code: 'SIDECAR_DOCKER_API' });
});

it('inspect of a gone container is undefined; other errors carry the status', async () => {
  const { client } = await fakeEngine({ ApiVersion: '1.41' });
  await client.negotiate();
  expect(await client.inspect('gone')).toBeUndefined();
  await expect(client.inspect('other')).rejects.toMatchObject({ code: 'SIDECAR_DOCKER_API' });
});

it('streams events until the engine ends the stream', async () => {
  const { client } = await fakeEngine({ ApiVersion: '1.41' });
  await client.negotiate();
  const actions: string[] = [];
  for await (const ev of await client.events({ type: ['container'] })) actions.push(ev.Action);
  expect(actions).toEqual(['start']);
});

it('an engine that is not there is SIDECAR_DOCKER_UNAVAILABLE', async () => {
  const client = new DockerClient({ socket: join(tmpdir(), 'cnmd-no-such-docker.sock') });
  cleanup.push(() => client.close());
  await expect(client.negotiate()).rejects.toMatchObject({ code: 'SIDECAR_DOCKER_UNAVAILABLE' });
});
