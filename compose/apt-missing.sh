#!/bin/sh
# apt-missing.sh PKG...: apt-get installs those of the Debian packages that are not installed yet,
# and nothing (no apt-get update, no network) when all are: a base image prepared with them builds
# offline. Used by the repo's Dockerfile and compose/demo.Dockerfile.
set -eu
missing=""
for p in "$@"; do
  dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "apt-missing:$missing"
apt-get update -q
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
rm -rf /var/lib/apt/lists/*
