export { type CliResult, TestHost } from './daemon-harness.js';
export { test } from './fixtures.js';
export { Netns, run } from './netns.js';
export { NsServer } from './servers.js';
