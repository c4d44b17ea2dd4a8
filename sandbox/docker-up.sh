#!/usr/bin/env bash
# Start (or reuse) the sandbox's own Docker engine: Debian's dockerd and
# containerd, with every socket, pid file, state dir, bridge and cgroup of
# their own, so they never touch another Docker engine on this machine.
#   - API on unix://$SANDBOX_DOCKER_DIR/docker.sock only (no TCP port);
#   - containers and `docker build` RUN steps get a bridge of our own on a
#     private /24 that no host route uses (never docker0);
#   - no iptables rules, no ip_forward change: published ports go through
#     docker-proxy on the host side, so bind them to 127.0.0.1.
# Installs Debian's docker.io when dockerd is missing (needs root, as dockerd
# does).  Progress goes to stderr; stdout gets one line, the DOCKER_HOST value.
# Undone by docker-down.sh.
#
# Environment: SANDBOX_NAME, KWOK_WORKDIR, SANDBOX_DOCKER_DIR (see
# docker-common.sh), SANDBOX_DOCKER_TIMEOUT (seconds to wait, default 60).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=docker-common.sh
. "$here/docker-common.sh"
TIMEOUT="${SANDBOX_DOCKER_TIMEOUT:-60}"

log() { echo "sandbox-docker: $*" >&2; }
die() { echo "sandbox-docker: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "dockerd needs root (bridge, mounts, cgroups); run as root or set SANDBOX_DOCKER=0"

find_bin() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || true; }

# ------------------------------------------------------------ docker.io
if [ -z "$(find_bin dockerd)" ]; then
  log "dockerd not found: installing Debian's docker.io ..."
  # The package's postinst would start a system-wide docker service through
  # invoke-rc.d (or systemd): policy-rc.d exit 101 forbids that.  Add one only
  # for the install, and only if the machine has none of its own.
  added_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# Temporary, from k8s-demo sandbox/docker-up.sh: start no services.\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io; } >&2 || rc=$?
  [ -z "$added_policy" ] || rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || die "apt-get install docker.io failed (exit $rc)"
fi
DOCKERD="$(find_bin dockerd)"
CONTAINERD="$(find_bin containerd)"
if [ -z "$DOCKERD" ] || [ -z "$CONTAINERD" ]; then
  die "dockerd or containerd still missing after installing docker.io"
fi
[ -x "$DOCKER_CLI" ] || die "docker client $DOCKER_CLI is missing (set SANDBOX_DOCKER_CLI)"

# Unix socket paths are limited to 107 bytes; containerd adds ".ttrpc".
[ "${#CONTAINERD_SOCK}" -le 100 ] ||
  die "$CONTAINERD_SOCK is too long for a unix socket: set SANDBOX_DOCKER_DIR to a shorter path"

mkdir -p "$DOCKER_DIR"
if our_pid "$DOCKER_PIDFILE" >/dev/null && sandbox_docker version >/dev/null 2>&1; then
  log "engine $DOCKER_DIR is already running"
  echo "unix://$DOCKER_SOCK"
  exit 0
fi
# Half-started or crashed before: clear what is left (processes, mounts, bridge).
"$here/docker-down.sh" >&2

# ------------------------------------------------------------ bridge
# shellcheck disable=SC2086 # split A.B.C.D on the dots
ip2int() { local IFS=.; set -- $1; echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4)); }
# used_prefixes: every IPv4 destination in any routing table, as A.B.C.D/N
# (the local table lists every address, so addresses are covered too).
used_prefixes() {
  ip -4 route show table all | awk '
    $1 ~ /^(local|broadcast|unicast|multicast|anycast|blackhole|unreachable|prohibit|throw|nat)$/ { $1 = "" ; $0 = $0 }
    $1 != "default" { d = $1; if (d !~ /\//) d = d "/32"; print d }'
}
# overlaps A.B.C.D/N E.F.G.H/M: do the two prefixes share an address?
overlaps() {
  local a b n
  a="$(ip2int "${1%/*}")" b="$(ip2int "${2%/*}")"
  n="${1#*/}"
  [ "${2#*/}" -lt "$n" ] && n="${2#*/}"
  local mask=$(((0xffffffff << (32 - n)) & 0xffffffff))
  [ "$n" = 0 ] && mask=0
  [ $((a & mask)) = $((b & mask)) ]
}
# pick_subnet: a 172.31.X.0/24 that overlaps no route, starting at an offset
# derived from the bridge name so that parallel sandboxes spread out.
pick_subnet() {
  local start x i cand p used
  used="$(used_prefixes)"
  start=$((16#${DOCKER_BRIDGE#k8sd-} % 256))
  for ((i = 0; i < 256; i++)); do
    x=$(((start + i) % 256))
    cand="172.31.$x.0/24"
    while read -r p; do
      [ -n "$p" ] || continue
      overlaps "$cand" "$p" && continue 2
    done <<<"$used"
    echo "$cand"
    return 0
  done
  return 1
}

if ip link show "$DOCKER_BRIDGE" >/dev/null 2>&1; then
  # Left over from a crashed run (docker-down.sh removes it): start afresh.
  ip link del "$DOCKER_BRIDGE"
fi
# Sandboxes started side by side (make e2e runs two) pick and claim a subnet one at a time.
exec 8>"$(dirname "$CACHE")/.docker-subnet.lock"
flock 8
SUBNET="$(pick_subnet)" || die "no free 172.31.X.0/24 for the bridge: every one overlaps a route"
GATEWAY="${SUBNET%.0/24}.1"
log "bridge $DOCKER_BRIDGE on $SUBNET (gateway $GATEWAY)"
printf 'BRIDGE=%s\nSUBNET=%s\n' "$DOCKER_BRIDGE" "$SUBNET" >"$BRIDGE_ENV"
ip link add name "$DOCKER_BRIDGE" type bridge
ip addr add "$GATEWAY/24" dev "$DOCKER_BRIDGE"
ip link set "$DOCKER_BRIDGE" up
flock -u 8
exec 8>&-

# ------------------------------------------------------------ containerd
# Our own containerd: without --containerd, dockerd would attach to a system
# containerd at /run/containerd/containerd.sock when one runs (another
# engine's), and otherwise start one of its own anyway.
mkdir -p "$DOCKER_DIR/containerd"
cat >"$DOCKER_DIR/containerd.toml" <<EOF
# Generated by sandbox/docker-up.sh: a containerd for this sandbox's dockerd only.
version = 2
root = "$DOCKER_DIR/containerd/root"
state = "$DOCKER_DIR/containerd/state"
# dockerd is the only client: Kubernetes' CRI plugin stays off.
disabled_plugins = ["io.containerd.grpc.v1.cri"]
# Root here may lack CAP_SYS_RESOURCE: never ask for a negative OOM score.
oom_score = 0
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$DOCKER_DIR/containerd/opt"
EOF
log "starting containerd ..."
# setsid: the daemons outlive this script and the shell that ran it; the
# inner shell records its own pid, which exec hands to containerd.
# shellcheck disable=SC2016 # $$ and $1 belong to the inner shell
setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$CONTAINERD_PIDFILE" \
  "$CONTAINERD" --config "$DOCKER_DIR/containerd.toml" \
  </dev/null >"$DOCKER_DIR/containerd.log" 2>&1 &

deadline=$((SECONDS + TIMEOUT))
fail() {
  log "$1; last lines of the logs:"
  tail -n 20 "$DOCKER_DIR/containerd.log" "$DOCKER_DIR/dockerd.log" 2>/dev/null >&2 || true
  "$here/docker-down.sh" >&2 || true
  die "$1"
}
until [ -S "$CONTAINERD_SOCK" ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "containerd did not open $CONTAINERD_SOCK within ${TIMEOUT}s"
  sleep 0.2
done

# ------------------------------------------------------------ dockerd
# An empty config file of our own, so /etc/docker/daemon.json (another
# engine's settings) is never read.
echo '{}' >"$DOCKER_DIR/daemon.json"
proxy_args=()
[ -x "$(dirname "$DOCKERD")/docker-proxy" ] && proxy_args=(--userland-proxy-path "$(dirname "$DOCKERD")/docker-proxy")
log "starting dockerd ..."
setsid "$DOCKERD" \
  --config-file "$DOCKER_DIR/daemon.json" \
  --data-root "$DOCKER_DIR/data" \
  --exec-root "$DOCKER_DIR/exec" \
  --host "unix://$DOCKER_SOCK" \
  --pidfile "$DOCKER_PIDFILE" \
  --containerd "$CONTAINERD_SOCK" \
  --bridge "$DOCKER_BRIDGE" \
  --iptables=false --ip-masq=false --ip-forward=false \
  --userland-proxy=true "${proxy_args[@]}" \
  --exec-opt native.cgroupdriver=cgroupfs \
  --cgroup-parent "$DOCKER_CGROUP_PARENT" \
  --oom-score-adjust 0 \
  </dev/null >"$DOCKER_DIR/dockerd.log" 2>&1 &

until sandbox_docker version >/dev/null 2>&1; do
  [ "$SECONDS" -lt "$deadline" ] || fail "dockerd did not answer on $DOCKER_SOCK within ${TIMEOUT}s"
  sleep 0.5
done
our_pid "$DOCKER_PIDFILE" >/dev/null || fail "dockerd answers but $DOCKER_PIDFILE names no dockerd of ours"
log "ready: dockerd $(sandbox_docker version --format '{{.Server.Version}}') on unix://$DOCKER_SOCK"
echo "unix://$DOCKER_SOCK"
