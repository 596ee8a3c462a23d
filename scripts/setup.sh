#!/usr/bin/env bash
# Sets up a fresh Debian machine for cnmd, as root: the kernel tools and test peers from apt
# (only what is missing; `apt-get update` once, and only then), the npm dependencies (native
# addons built here; nothing downloaded but registry packages), and a build. Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
[ "$(id -u)" = 0 ] || { echo "setup: run as root (apt, network namespaces)" >&2; exit 1; }

# iproute2..curl: what the daemon drives and the tests check with; dnsutils..nats-server: real
# peers for the tests and benchmarks; qemu..xz-utils: the IPVS VM; python3, make, g++: node-gyp;
# strace: lb/test/fixtures/capture-ipvsadm.sh records ipvsadm's netlink messages with it;
# prometheus, chromium: the telemetry tests scrape the daemon and load its status page (#15).
pkgs="iproute2 nftables iptables conntrack iputils-ping curl netcat-openbsd dnsutils dnsperf dnsmasq-base
  nats-server qemu-system-x86 ipvsadm cpio kmod xz-utils python3 make g++ procps strace tcpdump iperf3 prometheus chromium"
missing=$(for p in $pkgs; do dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "setup: apt-get install $(echo $missing)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
fi

npm ci --no-audit --no-fund
npm run build
