import { expect } from 'vitest';
import { test } from '../src/fixtures.js';
import { Netns } from '../src/netns.js';

test('a fresh namespace has only lo, and is gone after remove()', async ({ netns }) => {
  const links = await netns.exec('ip', ['-o', 'link', 'show']);
  expect(
    links
      .trim()
      .split('\n')
      .map((l) => l.split(': ')[1]),
  ).toEqual(['lo']);
  const other = await Netns.create();
  await other.remove();
  const names = (await import('node:fs')).readdirSync('/run/netns');
  expect(names).not.toContain(other.name);
});

test('two namespaces joined by a veth pair reach each other', async ({ netns }) => {
  await using peer = await Netns.create();
  await netns.exec('ip', ['link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', peer.name]);
  await netns.exec('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'va']);
  await peer.exec('ip', ['addr', 'add', '192.0.2.2/24', 'dev', 'vb']);
  await netns.exec('ip', ['link', 'set', 'va', 'up']);
  await peer.exec('ip', ['link', 'set', 'vb', 'up']);
  const out = await netns.exec('ping', ['-c', '1', '-W', '2', '192.0.2.2']);
  expect(out).toMatch(/1 received/);
});
