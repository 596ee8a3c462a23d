#!/usr/bin/env bash
# Runs the vitest `vm` project inside the IPVS VM: builds the VM once (../shared/recipes/ipvs-vm.sh),
# boots it once, and runs every *.vm.test.ts there with the host's node and this checkout.
# `test-vm.sh --bench NAME [ARGS]` runs e2e's bench NAME there instead (built beforehand).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
recipes=${CNMD_RECIPES:-$repo/../shared/recipes}
[ -x "$recipes/ipvs-vm.sh" ] || { echo "test-vm: no VM recipes at $recipes (set CNMD_RECIPES)" >&2; exit 1; }
# The IPVS VM with the IPsec modules added (vm-xfrm.sh builds it on the recipe's, once): ip_vs is
# loaded at boot, the schedulers and conntrack helpers the tests use come with it; xfrm_user and
# esp4 are loaded here, the AES-GCM crypto on demand. Two CPUs and 3 GB: the encrypted overlay's
# test runs three daemons and a NATS server in it.
vm=$(bash "$repo/e2e/scripts/vm-xfrm.sh")
export CNMD_VM_DIR=$vm CNMD_VM_MODULES="${CNMD_VM_MODULES:-} xfrm_user esp4" CNMD_VM_MEM=${CNMD_VM_MEM:-3G} \
  CNMD_VM_CPUS=${CNMD_VM_CPUS:-2}
# The checkout is seen read-only and cached (a host dir of --hostroot): a --share is uncached, and
# node's module loading over it took a minute per daemon. What the tests write goes to the VM's
# /tmp; vitest's cache and the report, to --shares of their own; the config is loaded without
# vite's temporary bundle beside it (--configLoader runner).
export CNMD_VM_HOSTROOT_DIRS="/usr /etc /opt $repo"
mkdir -p "$repo/node_modules/.vite"
cmd=(node "$repo/node_modules/vitest/vitest.mjs" run --configLoader runner --project vm)
if [ "${1:-}" = --bench ]; then shift; cmd=(node "$repo/e2e/dist/bench/run.js"); fi
exec bash "$recipes/vm-run.sh" --hostroot --share "$repo/node_modules/.vite" \
  ${CNMD_REPORT_DIR:+--share "$CNMD_REPORT_DIR"} --cwd "$repo" \
  --timeout "${CNMD_VM_TIMEOUT:-1500}" \
  --env CNMD_IN_VM=1 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  ${CNMD_REPORT_DIR:+--env CNMD_REPORT_DIR=$CNMD_REPORT_DIR} \
  -- "${cmd[@]}" "$@"
