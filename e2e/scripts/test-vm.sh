#!/usr/bin/env bash
# Runs the vitest `vm` project inside the IPVS VM: builds the VM once (../shared/recipes/ipvs-vm.sh),
# boots it once, and runs every *.vm.test.ts there with the host's node and this checkout.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
recipes=${CNMD_RECIPES:-$repo/../shared/recipes}
[ -x "$recipes/ipvs-vm.sh" ] || { echo "test-vm: no VM recipes at $recipes (set CNMD_RECIPES)" >&2; exit 1; }
bash "$recipes/ipvs-vm.sh" >/dev/null
# ip_vs is loaded at boot; the schedulers and conntrack helpers the tests use come with it.
exec bash "$recipes/vm-run.sh" --hostroot --share "$repo" --cwd "$repo" --timeout "${CNMD_VM_TIMEOUT:-900}" \
  --env CNMD_IN_VM=1 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  ${CNMD_REPORT_DIR:+--env CNMD_REPORT_DIR=$CNMD_REPORT_DIR} \
  -- node "$repo/node_modules/vitest/vitest.mjs" run --project vm "$@"
