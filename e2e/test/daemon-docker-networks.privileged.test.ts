// Networks made from Docker labels, with a stand-in engine (the real one is the docker project's):
// a label may not take every local pool. A container whose label names more missing networks
// than may be made is left alone, with a log line, and nothing is made for it.
import { afterEach, expect, it } from 'vitest';
import { TestHost } from '../src/daemon-harness.js';
import { Netns } from '../src/netns.js';
import { StandInEngine } from '../src/stand-in-engine.js';

const made: { close?: () => Promise<void>; remove?: () => Promise<void> }[] = [];
afterEach(async () => {
  for (const m of made.splice(0).reverse()) await (m.close ?? m.remove)?.call(m).catch(() => {});
});

async function setup(args: string[]) {
  const engine = await StandInEngine.start();
  made.push(engine);
  const host = await TestHost.start({ dockerSocket: engine.socket, args });
  made.push(host);
  const container = async (name: string, networks: string) => {
    const ns = await Netns.create('cnmd-sb');
    made.push(ns);
    await engine.run({ name, labels: { 'cnmd.networks': networks }, sandbox: ns.path });
    return ns;
  };
  const networks = async () => (await host.json<{ name: string }[]>('network', 'ls')).map((n) => n.name).sort();
  const names = async () => (await host.json<{ name: string }[]>('ps')).map((e) => e.name).sort();
  return { engine, host, container, networks, names };
}

async function until(what: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100 && !(await what()); i++) await new Promise((r) => setTimeout(r, 100));
}

it('makes at most --docker-max-networks networks from labels; past it a container is left alone', async () => {
  const { host, container, networks, names } = await setup(['--docker-max-networks', '2']);
  await container('greedy', 'a,b,c');
  await until(async () => host.log.includes('greedy'));
  expect(host.log).toMatch(/container greedy .* left alone: SIDECAR_DOCKER_NETWORK_LIMIT/);
  expect(await networks()).toEqual([]);

  await container('fits', 'a,b');
  await until(async () => (await names()).includes('fits'));
  expect(await networks()).toEqual(['a', 'b']);

  await container('third', 'c');
  await until(async () => host.log.includes('container third'));
  expect(await networks()).toEqual(['a', 'b']);
  expect(await names()).toEqual(['fits', 'fits']);

  // A network made by hand does not count, and is used.
  await host.ok('network', 'create', 'c');
  await container('fourth', 'c');
  await until(async () => (await names()).includes('fourth'));
  expect(await names()).toEqual(['fits', 'fits', 'fourth']);
});

it('--docker-create-networks false: only networks that exist are used', async () => {
  const { host, container, networks, names } = await setup(['--docker-create-networks', 'false']);
  await container('lost', 'nowhere');
  await until(async () => host.log.includes('container lost'));
  expect(host.log).toMatch(/container lost .* left alone: SIDECAR_NETWORK_NOT_FOUND: no network nowhere/);
  expect(await networks()).toEqual([]);
  await host.ok('network', 'create', 'there');
  await container('found', 'there');
  await until(async () => (await names()).includes('found'));
  expect(await names()).toEqual(['found']);
});
