#!/usr/bin/env bash
# Stop the sandbox's own Docker engine (docker-up.sh) and undo what it did on
# the host: its dockerd and containerd (only the pids in its own pid files,
# checked to be ours), any container left in its cgroup parent, every mount
# under its directory, its bridge, its sockets and pid files.  It added no
# iptables rules and changed no sysctl, so there is nothing else to undo.
# Never touches another Docker engine: no /var/run/docker.sock, no docker0,
# no process found by name.
#
# Keeps the image store ($SANDBOX_DOCKER_DIR/data), so the next docker-up.sh
# still has the base images and built app images; `--purge` deletes it too.
# Idempotent.  Same environment as docker-up.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=docker-common.sh
. "$here/docker-common.sh"
purge=""
case "${1:-}" in
  "") ;;
  --purge) purge=1 ;;
  *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

log() { echo "sandbox-docker-down: $*" >&2; }

[ -d "$DOCKER_DIR" ] || { log "no engine in $DOCKER_DIR"; exit 0; }
[ "$(id -u)" = 0 ] || { log "ERROR: needs root, as docker-up.sh did"; exit 1; }

stopped=""
# stop PIDFILE WHAT: the process in PIDFILE, if it is ours, given 30 s to
# exit.  dockerd stops its running containers on SIGTERM.
stop() {
  local pid
  if pid="$(our_pid "$1")"; then
    stopped=1
    terminate "$pid" "$2" 30
  fi
  rm -f "$1"
}
stop "$DOCKER_PIDFILE" dockerd

# Containers that outlived dockerd (SIGKILLed engine): their processes are in
# our cgroup parent and nowhere else.
cgroup_dirs() {
  find /sys/fs/cgroup -maxdepth 2 -type d -name "${DOCKER_CGROUP_PARENT#/}" 2>/dev/null || true
}
left=""
while read -r d; do
  [ -n "$d" ] || continue
  left+="$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || true)"$'\n'
done < <(cgroup_dirs)
# (The same process is listed once per cgroup controller.)
while read -r pid; do
  [ -n "$pid" ] || continue
  log "killing left-over container process $pid"
  stopped=1
  kill -KILL "$pid" 2>/dev/null || true
done < <(sort -un <<<"$left")
# Shims that outlived containerd: started with our containerd's socket.
for p in /proc/[0-9]*; do
  if { tr '\0' '\n' <"$p/cmdline"; } 2>/dev/null | grep -qxF "$CONTAINERD_SOCK"; then
    log "killing left-over shim ${p#/proc/}"
    stopped=1
    kill -KILL "${p#/proc/}" 2>/dev/null || true
  fi
done
stop "$CONTAINERD_PIDFILE" containerd

# Mounts under our directory (overlay layers, netns bind mounts, shm),
# deepest first.
mapfile -t mounts < <(awk -v d="$DOCKER_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
for m in "${mounts[@]}"; do
  umount "$m" 2>/dev/null || umount -l "$m" || log "WARNING: could not unmount $m"
  stopped=1
done

# Empty cgroups of ours, deepest first.
while read -r d; do
  [ -n "$d" ] || continue
  find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || log "WARNING: could not remove cgroup $d"
done < <(cgroup_dirs)

# Our bridge: the name docker-up.sh recorded, which is always ours (k8sd-<hash>).
bridge="$DOCKER_BRIDGE"
if [ -f "$BRIDGE_ENV" ]; then
  bridge="$(sed -n 's/^BRIDGE=//p' "$BRIDGE_ENV")"
fi
case "$bridge" in
  k8sd-*)
    if ip link show "$bridge" >/dev/null 2>&1; then
      log "removing bridge $bridge"
      ip link del "$bridge"
      stopped=1
    fi
    ;;
  *) log "WARNING: $BRIDGE_ENV names $bridge, not a sandbox bridge: left alone" ;;
esac

rm -rf "$DOCKER_DIR/exec" "$DOCKER_DIR/containerd/state"
rm -f "$DOCKER_SOCK" "$CONTAINERD_SOCK" "$CONTAINERD_SOCK.ttrpc" "$BRIDGE_ENV"
if [ -n "$purge" ]; then
  rm -rf "$DOCKER_DIR"
  log "engine stopped; $DOCKER_DIR removed"
elif [ -n "$stopped" ]; then
  log "engine stopped; images kept in $DOCKER_DIR/data (--purge removes them)"
fi
