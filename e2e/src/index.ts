export { test } from './fixtures.js';
export { Netns, run } from './netns.js';
