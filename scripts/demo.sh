#!/usr/bin/env bash
# The main job, as a demo: the cnmd daemon in a demo host namespace, one network, three
# sandboxes (named namespaces cnmd-demo-*), and dig answering their names from inside them.
# Ctrl-C stops the daemon and removes everything the demo made. Run as root after setup.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root" >&2; exit 1; }
dir=$(mktemp -d /tmp/cnmd-demo.XXXXXX)
host=cnmd-demo-host
names=(web db cache)
pid=''
cnmd() { node sidecar/bin/cnmd.js --socket "$dir/cnmd.sock" "$@"; }
cleanup() {
  trap - EXIT INT TERM
  echo; echo "demo: cleaning up"
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  for n in "${names[@]}"; do ip netns delete "cnmd-demo-$n" 2>/dev/null || true; rm -rf "/etc/netns/cnmd-demo-$n"; done
  ip netns delete "$host" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

ip netns add "$host"
ip -n "$host" link set lo up
printf 'options ndots:0\n' > "$dir/resolv.conf"
# The daemon runs in its own host namespace so the demo leaves this machine's network alone.
nsenter --net="/run/netns/$host" node sidecar/bin/cnmd.js daemon --state-dir "$dir/state" --socket "$dir/cnmd.sock" \
  --resolv-conf "$dir/resolv.conf" --dns-upstream 127.0.0.1:1 &
pid=$!
for _ in $(seq 100); do cnmd network ls >/dev/null 2>&1 && break; sleep 0.1; done

cnmd network create demo --subnet 10.123.0.0/24 >/dev/null
for n in "${names[@]}"; do
  ip netns add "cnmd-demo-$n"
  cnmd attach "cnmd-demo-$n" --network demo --name "$n" --alias "$n.demo" >/dev/null
done
echo "== cnmd ps"; cnmd ps
echo "== cnmd network ls"; cnmd network ls
for n in "${names[@]}"; do
  echo "== inside cnmd-demo-$n: dig @127.0.0.11 web db cache"
  for q in "${names[@]}"; do printf '   %-6s %s\n' "$q" "$(ip netns exec "cnmd-demo-$n" dig @127.0.0.11 +short "$q")"; done
done
echo "== inside cnmd-demo-web: getent hosts db.demo; ping -c1 cache"
ip netns exec cnmd-demo-web getent hosts db.demo
ip netns exec cnmd-demo-web ping -c 1 -W 2 cache | head -2
echo
echo "demo: running; try: ip netns exec cnmd-demo-db dig @127.0.0.11 web   (Ctrl-C to stop and clean up)"
wait "$pid"
