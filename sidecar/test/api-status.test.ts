// Every error code of every package has an HTTP status chosen for it (api/errors.ts), so a new
// code is a decision: a client's mistake (4xx) or the daemon's fault (500).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { STATUS_BY_CODE, statusOf } from '../src/api/errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

const codes = new Set(
  ['ipam', 'dns', 'lb', 'sidecar'].flatMap((pkg) =>
    sources(join(root, pkg, 'src')).flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/'((?:IPAM|DNS|LB|SIDECAR|API)_[A-Z0-9_]+)'/g)].map((m) => m[1]!),
    ),
  ),
);

it('finds the codes of every package', () => {
  expect(codes.size).toBeGreaterThan(80);
  expect(codes).toContain('SIDECAR_NETNS_INVALID');
  expect(codes).toContain('IPAM_POOL_EXHAUSTED');
});

it.each([...codes].sort())('%s has a status', (code) => {
  expect(STATUS_BY_CODE[code], `api/errors.ts lists no status for ${code}`).toBeDefined();
});

it('client mistakes are 4xx, faults of the daemon 500', () => {
  expect(statusOf('SIDECAR_NETNS_INVALID')).toBe(400);
  expect(statusOf('SIDECAR_CONFIG_INVALID')).toBe(400);
  expect(statusOf('IPAM_STORE_CONFLICT')).toBe(500);
  expect(statusOf('SIDECAR_STATE_CONFLICT')).toBe(500);
  expect(statusOf('SOMETHING_NEW')).toBe(500);
});
