#!/usr/bin/env bash
# Runs lb/bench/ipvs.bench.ts inside the IPVS VM (the host kernel has no IPVS): builds lb on the
# host, builds the VM once (../shared/recipes/ipvs-vm.sh), boots it once and runs the compiled
# bench there with the host's node and this checkout; the bench gives each full sync a network
# namespace of its own, so that each starts from an empty IPVS state (no destination trash)
# without a boot of its own. Prints the bench's JSON line. As root.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
recipes=${CNMD_RECIPES:-$repo/../shared/recipes}
(cd "$repo" && npx tsc -b lb)
bash "$recipes/ipvs-vm.sh" >/dev/null
env=(--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
[ -n "${CNMD_LB_BENCH_SERVICES:-}" ] && env+=(--env "CNMD_LB_BENCH_SERVICES=$CNMD_LB_BENCH_SERVICES")
# Node without its JIT in the VM: qemu's TCG retranslates every page of code V8 writes, which
# made a hinted change 16 ms instead of 5 and 300 services' full sync 6 s instead of 0.7 (set
# CNMD_LB_BENCH_NODE_OPTIONS= to run with the JIT, or to other options).
node_options=${CNMD_LB_BENCH_NODE_OPTIONS---jitless}
[ -n "$node_options" ] && env+=(--env "NODE_OPTIONS=$node_options")
CNMD_VM_MEM=${CNMD_VM_MEM:-2G} exec bash "$recipes/vm-run.sh" --hostroot --share "$repo" --cwd "$repo" \
  --timeout "${CNMD_VM_TIMEOUT:-900}" "${env[@]}" -- node "$repo/lb/dist/bench/ipvs.bench.js"
