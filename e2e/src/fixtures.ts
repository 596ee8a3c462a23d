import { test as base } from 'vitest';
import { Netns } from './netns.js';

/** A vitest `test` whose `netns` fixture is a fresh network namespace, removed after the test. */
export const test = base.extend<{ netns: Netns }>({
  // biome-ignore lint/correctness/noEmptyPattern: vitest fixtures take their dependencies by destructuring
  netns: async ({}, use) => {
    const ns = await Netns.create();
    try {
      await use(ns);
    } finally {
      await ns.remove();
    }
  },
});
