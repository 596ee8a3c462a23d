#!/usr/bin/env bash
# A Docker engine for the docker tests (CI), as ../shared/recipes/docker-engine.sh found works here:
#   bash e2e/scripts/docker-engine.sh start     # prints "started" or "reused"
#   bash e2e/scripts/docker-engine.sh restart   # restarts the engine it started (containers live on)
#   bash e2e/scripts/docker-engine.sh stop      # undoes what start made; nothing when it reused one
# start reuses an engine that already answers on /var/run/docker.sock (stop then leaves it alone).
# Otherwise it installs Debian's docker.io when missing, and the compose v2 plugin (Debian trixie's
# docker-compose .deb, extracted: bookworm has only compose v1) under $DOCKER_CONFIG/cli-plugins;
# makes /run/docker/netns a shared mount (cnmd's container mounts it rslave); and runs dockerd
# with --live-restore, so that a restart keeps the containers running, behind a socket that
# outlives it (dockerd-socket.py), so that a restart keeps the socket too. Either way the engine has
# the image local/busybox afterwards.
# The CLI and the tests use DOCKER_CONFIG=/tmp/cnmd-docker/dockercfg (where the plugin is).
set -euo pipefail
W=${CNMD_DOCKER_DIR:-/tmp/cnmd-docker}
export DOCKER_CONFIG="$W/dockercfg"
PIDFILE="$W/ci-dockerd.pid" # ours only: the engine this script started
SOCK=/var/run/docker.sock
mkdir -p "$W"

ping() { curl -s --max-time 1 --unix-socket "$SOCK" http://localhost/_ping 2>/dev/null | grep -qx OK; }
ours() { [ -f "$PIDFILE" ] && grep -qs dockerd-socket.py "/proc/$(cat "$PIDFILE")/cmdline"; }

install() {
  if ! command -v dockerd >/dev/null; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io >/dev/null
  fi
  [ -x "$DOCKER_CONFIG/cli-plugins/docker-compose" ] && return
  # A private apt state for trixie (the system's sources untouched), on the host's Debian mirror.
  local a="$W/apt-trixie" uri
  local ao=(-o Dir::Etc::SourceList="$a/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State::Lists="$a/lists" -o Dir::Cache="$a/cache")
  mkdir -p "$a"/{lists/partial,cache/archives/partial,etc}
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" > "$a/etc/sources.list"
  ls "$a"/docker-compose_2*.deb >/dev/null 2>&1 || {
    apt-get "${ao[@]}" update -q >/dev/null
    (cd "$a" && apt-get "${ao[@]}" download docker-compose >/dev/null)
  }
  rm -rf "$a/x" && dpkg-deb -x "$(ls "$a"/docker-compose_2*.deb | tail -1)" "$a/x"
  mkdir -p "$DOCKER_CONFIG/cli-plugins"
  cp "$a/x/usr/libexec/docker/cli-plugins/docker-compose" "$DOCKER_CONFIG/cli-plugins/"
  rm -rf "$a/x"
}

# dockerd behind dockerd-socket.py, which holds the socket (as systemd's docker.socket does), so
# that a restart keeps the socket file that cnmd's container has bind-mounted. PIDFILE: its pid.
run_dockerd() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/dockerd-socket.py" "$SOCK" "$W/ci-dockerd.log" \
    --iptables=true --live-restore --pidfile "$W/ci-dockerd-self.pid" >/dev/null 2>&1 &
  echo $! > "$PIDFILE"
  up
}

# Waits until the engine answers (a new dockerd, after a start or a restart).
up() {
  for _ in $(seq 1 600); do
    [ -f "$W/ci-dockerd-self.pid" ] && ping && return
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
    sleep 0.05
  done
  echo "docker-engine: dockerd did not come up; $W/ci-dockerd.log:" >&2
  tail -20 "$W/ci-dockerd.log" >&2
  exit 1
}

stop_dockerd() {
  local p
  p=$(cat "$PIDFILE")
  kill -TERM "$p"
  for _ in $(seq 1 400); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$p"
}

# local/busybox, the docker-source tests' image (e2e/src/docker.ts), from the host's busybox as
# the recipe makes it, when the engine lacks it.
busybox_image() {
  docker image inspect local/busybox >/dev/null 2>&1 && return
  if ! [ -x /bin/busybox ]; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends busybox-static >/dev/null
  fi
  local r
  r=$(mktemp -d)
  mkdir -p "$r"/{bin,etc,tmp,proc,sys,dev,root,var/www}
  cp /bin/busybox "$r/bin/busybox" && chroot "$r" /bin/busybox --install -s /bin
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
  tar -C "$r" -c . | docker import -c 'CMD ["/bin/sh"]' - local/busybox:latest >/dev/null
  rm -rf "$r"
}

start() {
  install
  if ping; then
    busybox_image
    echo reused
    return
  fi
  # What stop restores.
  cat /proc/sys/net/ipv4/ip_forward > "$W/ci-pre-ip_forward"
  if findmnt -n /var/lib/docker >/dev/null; then touch "$W/ci-pre-data-mounted"; else rm -f "$W/ci-pre-data-mounted"; fi
  if nft list tables 2>/dev/null | grep -qE '^table ip (nat|filter)$'; then touch "$W/ci-pre-ip-tables"; else rm -f "$W/ci-pre-ip-tables"; fi
  # '/' is a private mount here: without its own shared mount, /run/docker/netns could not be
  # mounted rslave into cnmd's container.
  mkdir -p /run/docker/netns
  if ! findmnt -n /run/docker/netns >/dev/null; then
    mount --bind /run/docker/netns /run/docker/netns && mount --make-shared /run/docker/netns
    touch "$W/ci-mounted-netns"
  fi
  run_dockerd
  busybox_image
  echo started
}

restart() {
  ours || { echo "docker-engine: not restarting an engine this script did not start" >&2; exit 1; }
  local old
  old=$(cat "$W/ci-dockerd-self.pid")
  rm -f "$W/ci-dockerd-self.pid"
  kill -HUP "$(cat "$PIDFILE")"
  while kill -0 "$old" 2>/dev/null; do sleep 0.05; done
  up
}

stop() {
  ours || { rm -f "$PIDFILE"; return 0; }
  # The tests remove what they make; anything left would outlive dockerd (--live-restore).
  local left
  left=$(docker ps -aq)
  if [ -n "$left" ]; then
    echo "docker-engine: removing containers the tests left: $(echo $left)" >&2
    docker rm -f $left >/dev/null
  fi
  stop_dockerd
  rm -f "$PIDFILE"
  if [ -f "$W/ci-mounted-netns" ]; then umount /run/docker/netns; rm -f "$W/ci-mounted-netns"; fi
  # dockerd bind-mounts its data root onto itself and may leave it so.
  if [ ! -f "$W/ci-pre-data-mounted" ] && findmnt -n /var/lib/docker >/dev/null; then umount /var/lib/docker; fi
  # What dockerd leaves: its bridges, its iptables chains and rules (only those naming DOCKER* or
  # its bridges), the ip tables it made, the containerd shims' socket dir, ip_forward.
  ip link del docker0 2>/dev/null || true
  for b in $(ip -o link show type bridge | awk -F': ' '{print $2}' | grep -E '^br-[0-9a-f]{12}$' || true); do ip link del "$b"; done
  local t c
  for t in nat filter; do
    iptables -t $t -S 2>/dev/null | grep '^-A' | grep -E 'DOCKER|docker0|br-[0-9a-f]{12}' | sed 's/^-A/-D/' |
      while read -r r; do eval iptables -t $t "$r"; done
    for c in $(iptables -t $t -S 2>/dev/null | awk '/^-N DOCKER/{print $2}'); do iptables -t $t -F "$c"; done
    for c in $(iptables -t $t -S 2>/dev/null | awk '/^-N DOCKER/{print $2}'); do iptables -t $t -X "$c"; done
  done
  iptables -P FORWARD ACCEPT 2>/dev/null || true
  if [ ! -f "$W/ci-pre-ip-tables" ]; then
    for t in nat filter; do
      if nft list table ip $t >/dev/null 2>&1 && ! iptables -t $t -S | grep -q '^-A'; then nft delete table ip $t; fi
    done
  fi
  if [ -d /run/containerd/s ] && [ -z "$(ls -A /run/containerd/s)" ]; then rmdir /run/containerd/s; fi
  [ -f "$W/ci-pre-ip_forward" ] && sysctl -qw net.ipv4.ip_forward="$(cat "$W/ci-pre-ip_forward")"
  rm -f "$W/ci-pre-ip_forward" "$W/ci-pre-ip-tables" "$W/ci-pre-data-mounted"
}

case "${1:-}" in
  start | restart | stop) "$1" ;;
  *) echo "usage: $0 start|restart|stop" >&2; exit 2 ;;
esac
