#!/usr/bin/env bash
# Makes the local images the docker tests build on, without any image registry:
#   cnmd-test/base:local  Debian bookworm from Debian packages (mmdebstrap) with the host's Node 20
#                         copied in, plus what the Dockerfile's stages would otherwise apt-get:
#                         the native addons' build tools, cnmd's runtime tools and the demo's
#                         client tools. The repo's Dockerfile and compose/demo.Dockerfile build
#                         FROM it offline (their apt steps skip what is installed).
#   cnmd-test/demo:local  compose/demo.Dockerfile on that base (the demo's web and client).
# Cached: Debian is rebuilt only when its package list changes; the rest are docker builds (layer cache).
#
#   bash e2e/scripts/docker-base-image.sh        # prints the two image names
#
# Needs a running engine (e2e/scripts/docker-engine.sh start) and DOCKER_CONFIG as it exports.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
DEBIAN=cnmd-test/bookworm:local
BASE=${CNMD_BASE_IMAGE:-cnmd-test/base:local}
DEMO=${CNMD_DEMO_IMAGE:-cnmd-test/demo:local}
# build: python3 make g++ (node-gyp); runtime: nftables (nft, libnftables.so.1) iptables conntrack
# iproute2 procps (sysctl); demo: curl dnsutils (dig); the compose file's cluster profile:
# nats-server; ca-certificates for npm's registry.
PKGS=ca-certificates,python3,make,g++,nftables,iptables,conntrack,iproute2,procps,curl,dnsutils,nats-server

# docker build, quiet unless it fails (the legacy builder's deprecation notice included).
build() {
  local out
  out=$(docker build -q --force-rm "$@" 2>&1) || { echo "$out" >&2; return 1; }
}

# 1. Debian from its packages, imported as one layer: rebuilt only when the packages change.
inputs=$(echo "bookworm variant=apt $PKGS" | sha256sum | cut -c1-16)
have=$(docker image inspect -f '{{index .Config.Labels "org.cnmd-test.inputs"}}' "$DEBIAN" 2>/dev/null || true)
if [ "$have" != "$inputs" ]; then
  command -v mmdebstrap >/dev/null || {
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap >/dev/null
  }
  # The Debian mirror the host uses.
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  echo "docker-base-image: building $DEBIAN with mmdebstrap (a few minutes, once)" >&2
  mmdebstrap --quiet --variant=apt --mode=root --format=tar --include="$PKGS" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
    bookworm - "deb $uri bookworm main" |
    docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -c "LABEL org.cnmd-test.inputs=$inputs" -c 'CMD ["bash"]' - "$DEBIAN" >/dev/null
fi

# 2. The host's Node on top (node, npm, npx and the headers node-gyp builds against, under its
# prefix; the Dockerfile asks node where it lives), with the host's CA bundle and npm's global
# config, so that npm in the image reaches the registry as the host's does. Docker's layer cache
# keeps it while these files are unchanged.
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
mkdir -p "$ctx/root$prefix" "$ctx/root/etc/ssl/certs"
tar -C "$prefix" -cf - bin/node bin/npm bin/npx include/node lib/node_modules/npm | tar -C "$ctx/root$prefix" -xf -
cp /etc/ssl/certs/ca-certificates.crt "$ctx/root/etc/ssl/certs/"
npmrc=$(npm config get globalconfig)
if [ -f "$npmrc" ]; then mkdir -p "$ctx/root$(dirname "$npmrc")" && cp "$npmrc" "$ctx/root$npmrc"; fi
printf 'FROM %s\nCOPY root/ /\n' "$DEBIAN" > "$ctx/Dockerfile"
build -t "$BASE" "$ctx"

# 3. The demo's image.
build -f compose/demo.Dockerfile --build-arg BASE_IMAGE="$BASE" -t "$DEMO" .
echo "$BASE $DEMO"
