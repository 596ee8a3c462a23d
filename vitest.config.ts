import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import the packages' TypeScript sources, so no build is needed to run them; child
// processes that a test spawns use the built dist/ (the privileged and docker projects build it
// first: e2e/src/privileged-setup.ts).
const alias = Object.fromEntries(
  ['netutil', 'ipam', 'dns', 'lb', 'sidecar'].flatMap((p) => [
    [`@cnmd/${p}/internal`, fileURLToPath(new URL(`./${p}/src/internal.ts`, import.meta.url))],
    [`@cnmd/${p}`, fileURLToPath(new URL(`./${p}/src/index.ts`, import.meta.url))],
  ]),
);

const pkgs = '{netutil,ipam,dns,lb,sidecar,e2e}';

// .ci/run sets CNMD_REPORT_DIR to add up its runs (the host's, the VM's, the docker project's)
// in one closing line; CNMD_REPORT_NAME names a run's report.
const reportDir = process.env.CNMD_REPORT_DIR;
const reportName = process.env.CNMD_REPORT_NAME ?? (process.env.CNMD_IN_VM === '1' ? 'vm' : 'host');
const reporters = reportDir ? ['default', ['json', { outputFile: `${reportDir}/${reportName}.json` }]] : ['default'];

export default defineConfig({
  resolve: { alias },
  test: {
    reporters: reporters as never,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [`${pkgs}/test/**/*.test.ts`],
          exclude: ['**/*.{integration,privileged,vm,docker}.test.ts', '**/node_modules/**'],
        },
      },
      {
        extends: true,
        test: { name: 'integration', include: [`${pkgs}/test/**/*.integration.test.ts`], testTimeout: 30_000 },
      },
      {
        // As root: each test gets a fresh network namespace (e2e/src/netns.ts).
        extends: true,
        test: {
          name: 'privileged',
          include: [`${pkgs}/test/**/*.privileged.test.ts`],
          globalSetup: ['e2e/src/privileged-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // Runs inside the IPVS VM (e2e/scripts/test-vm.sh boots it once and runs this project there).
        extends: true,
        test: {
          name: 'vm',
          include: [`${pkgs}/test/**/*.vm.test.ts`],
          globalSetup: ['e2e/src/vm-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // Against a real Docker engine (.ci/run installs and starts one; e2e/test/*.docker.test.ts).
        extends: true,
        test: {
          name: 'docker',
          include: [`${pkgs}/test/**/*.docker.test.ts`],
          // The harness's `ip netns add` mounts /run/netns as in the privileged project: unmounted after.
          globalSetup: ['e2e/src/privileged-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
