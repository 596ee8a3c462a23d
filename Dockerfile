# cnmd's image: the daemon and CLI, built from this repo. docker-compose.yml builds it; so can
#   docker build -t cnmd .
# BASE_IMAGE is any Debian bookworm image with Node 20 (headers included, as the official images
# have them); e2e/scripts/docker-base-image.sh makes one without a registry. The apt steps install
# only what the base lacks, so a base that has it all builds without apt.
ARG BASE_IMAGE=node:20-bookworm-slim

# Build: the native addons (dns/native, sidecar/native) need node-gyp's tools; then tsc, then only
# what runs is kept in /app (production node_modules, each package's dist/src and addon).
FROM ${BASE_IMAGE} AS build
COPY compose/apt-missing.sh /usr/local/sbin/apt-missing
RUN apt-missing python3 make g++
WORKDIR /src
# Manifests and addon sources first: npm ci (which compiles the addons) reruns only when they change.
COPY package.json package-lock.json ./
COPY netutil/package.json netutil/
COPY ipam/package.json ipam/
COPY lb/package.json lb/
COPY e2e/package.json e2e/
COPY dns/package.json dns/
COPY dns/native dns/native
COPY sidecar/package.json sidecar/
COPY sidecar/native sidecar/native
# node-gyp builds against the running node's own headers (no download).
RUN npm_config_nodedir="$(node -p "require('node:path').resolve(process.execPath, '../..')")" \
    npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
    && mkdir -p /app && cp -a package.json node_modules /app/ && rm -f /app/node_modules/@cnmd/e2e \
    && for p in netutil ipam dns lb sidecar; do mkdir -p /app/$p/dist && cp -a $p/package.json /app/$p/ && cp -a $p/dist/src /app/$p/dist/; done \
    && cp -a sidecar/bin /app/sidecar/ \
    && for p in dns sidecar; do mkdir -p /app/$p/native/build/Release && cp $p/native/build/Release/*.node /app/$p/native/build/Release/; done

# Runtime: what the daemon runs (nft and libnftables.so.1, conntrack, ip, sysctl; iptables for
# hosts whose firewall is iptables) and the built tree.
FROM ${BASE_IMAGE}
COPY compose/apt-missing.sh /usr/local/sbin/apt-missing
RUN apt-missing nftables iptables conntrack iproute2 procps
COPY --from=build /app /app
WORKDIR /app
ENTRYPOINT ["node", "sidecar/bin/cnmd.js"]
# With the engine's socket mounted at /var/run/docker.sock, labelled containers are networked.
CMD ["daemon", "--docker-socket", "/var/run/docker.sock"]
