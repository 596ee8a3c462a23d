// The package boundaries of DESIGN.md, enforced by the linter: dns, ipam and lb import none of
// each other, nothing imports sidecar or e2e, netutil imports no @cnmd package (ipam, lb and
// sidecar may import it), and no sidecar driver imports another. Each case lints a probe file
// in the package (or folder).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const biome = fileURLToPath(new URL('../../node_modules/.bin/biome', import.meta.url));

/** The diagnostics biome gives a probe file that imports `specifier`, as `category: message`. */
async function lint(pkg: string, specifier: string): Promise<string[]> {
  const file = `${root}${pkg}/lint-probe-${randomBytes(4).toString('hex')}.ts`;
  await writeFile(file, `import { x } from '${specifier}';\n\nexport const y = x;\n`);
  try {
    // Exits non-zero on any error: the report says which.
    const out = await promisify(execFile)(biome, ['lint', '--reporter=json', file], { cwd: root }).catch(
      (e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }),
    );
    const report = JSON.parse(out.stdout) as { diagnostics: { category: string; message: string }[] };
    return report.diagnostics.map((d) => `${d.category}: ${d.message}`);
  } finally {
    await rm(file, { force: true });
  }
}

describe('package import rules', () => {
  it.each([
    ['dns', '@cnmd/ipam'],
    ['dns', '../../lb/src/index.js'],
    ['ipam', '@cnmd/dns/internal'],
    ['lb', '@cnmd/ipam'],
    ['lb', '@cnmd/sidecar'],
    ['ipam', '../../sidecar/src/index.js'],
    ['sidecar', '@cnmd/e2e'],
    ['e2e', '../../ipam/src/index.js'],
    ['netutil', '@cnmd/ipam'],
    ['netutil', '../../lb/src/index.js'],
    ['sidecar/src/drivers/bridge', '../macvlan/driver.js'],
    ['sidecar/src/drivers/macvlan', '../../drivers/bridge/driver.js'],
    ['sidecar/src/drivers/null', '../index.js'],
    ['sidecar/src/drivers/host', '@cnmd/e2e'],
  ])('%s may not import %s', async (pkg, spec) => {
    const found = await lint(pkg, spec);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^lint\/style\/noRestrictedImports: /);
  });

  it.each([
    ['sidecar', '@cnmd/ipam'],
    ['sidecar', '@cnmd/dns'],
    ['e2e', '@cnmd/lb'],
    ['dns', 'dns-packet'],
    ['lb', '@cnmd/netutil'],
    ['ipam', '@cnmd/netutil'],
    ['sidecar', '@cnmd/netutil'],
    ['sidecar/src/drivers/bridge', '../../network/driver.js'],
    ['sidecar/src/drivers/macvlan', '../../kernel/types.js'],
  ])('%s may import %s', async (pkg, spec) => {
    expect(await lint(pkg, spec)).toEqual([]);
  });
});
