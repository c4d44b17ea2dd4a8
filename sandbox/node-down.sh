#!/usr/bin/env bash
# Stop the sandbox's real node (node-up.sh) and put the host back as
# node-up.sh found it: stops kube-proxy (then `kube-proxy --cleanup`), the
# kubelet and cri-dockerd, removes the pods' containers from the sandbox's
# own engine, unmounts what the kubelet mounted, deletes the kubelet's
# iptables chains and the nf_tables tables iptables left empty (only those
# the host did not have), restores the kernel settings from
# $NODE_DIR/host-before.env, deletes the pods' bridge and its conntrack
# entries, the kubelet's cgroups and the host paths it created.
# Acts only on processes named in its own pid files (checked to be ours),
# and releases the host-wide real-node claim only if it is this sandbox's.
# Idempotent: with no node, it does nothing.  The logs stay in $NODE_DIR.
# Same environment as node-up.sh.  down.sh runs it before docker-down.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=node-common.sh
. "$here/node-common.sh"
BIN="$CACHE/bin"

log() { echo "sandbox-node-down: $*" >&2; }

[ -d "$NODE_DIR" ] || exit 0
[ "$(id -u)" = 0 ] || { log "ERROR: needs root, as node-up.sh did"; exit 1; }

# stop NAME: our process NAME, given 20 s to exit.
stop() {
  local pid
  if pid="$(our_node_pid "$1")"; then
    terminate "$pid" "$1" 20
  fi
  rm -f "$NODE_DIR/$1.pid"
}

started=""
[ -f "$HOST_RECORD" ] && started=1

stop kube-proxy
# kube-proxy removes its own rules (every mode's); only run when ours ran,
# since another kube-proxy's rules would go too (node-up.sh refuses to start
# next to one).
if [ -n "$started" ] && [ -x "$BIN/kube-proxy" ]; then
  "$BIN/kube-proxy" --cleanup >"$NODE_DIR/kube-proxy-cleanup.log" 2>&1 || log "WARNING: kube-proxy --cleanup failed (see $NODE_DIR/kube-proxy-cleanup.log)"
fi
stop kubelet
# The pods' containers (pause and app): the engine is the sandbox's own, so
# every Kubernetes container in it belongs to this node.
if sandbox_docker version >/dev/null 2>&1; then
  mapfile -t containers < <(sandbox_docker ps -aq --filter label=io.kubernetes.docker.type)
  if [ "${#containers[@]}" -gt 0 ]; then
    log "removing ${#containers[@]} pod containers ..."
    sandbox_docker rm -f "${containers[@]}" >/dev/null || log "WARNING: could not remove every pod container"
  fi
fi
stop cri-dockerd

# The kubelet's bind mount of its root dir, and pod volumes (tmpfs), deepest first.
mapfile -t mounts < <(awk -v d="$NODE_DIR/" 'index($5, d) == 1 || $5 == substr(d, 1, length(d) - 1) { print $5 }' /proc/self/mountinfo | sort -r)
for m in "${mounts[@]}"; do
  umount "$m" 2>/dev/null || umount -l "$m" || log "WARNING: could not unmount $m"
done

if [ -n "$started" ]; then
  # The kubelet's chains, which kube-proxy --cleanup leaves, in both families.
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for hook in INPUT OUTPUT; do
      while "$ipt" -t filter -D "$hook" -j KUBE-FIREWALL 2>/dev/null; do :; done
    done
    for chain in filter:KUBE-FIREWALL mangle:KUBE-KUBELET-CANARY filter:KUBE-KUBELET-CANARY \
      nat:KUBE-KUBELET-CANARY mangle:KUBE-IPTABLES-HINT; do
      if "$ipt" -t "${chain%%:*}" -F "${chain#*:}" 2>/dev/null; then
        "$ipt" -t "${chain%%:*}" -X "${chain#*:}" 2>/dev/null || log "WARNING: could not delete $ipt chain $chain"
      fi
    done
  done
  # iptables-nft leaves the tables it created, empty: delete those the host
  # did not have before, and only when no rule is left in them.
  if command -v nft >/dev/null; then
    while read -r family table; do
      grep -qx "TABLE $family $table" "$HOST_RECORD" && continue
      rules="$(nft -j list table "$family" "$table" 2>/dev/null |
        python3 -c 'import json, sys; print(sum("rule" in o for o in json.load(sys.stdin)["nftables"]))' 2>/dev/null || echo error)"
      if [ "$rules" = 0 ]; then
        nft delete table "$family" "$table"
      else
        log "WARNING: nf_tables table $family $table still has rules ($rules): left alone"
      fi
    done < <(nft list tables 2>/dev/null | awk '$1 == "table" { print $2, $3 }')
  fi
  # Kernel settings as they were.
  while IFS='=' read -r key value; do
    [ "$(sysctl -n "$key")" = "$value" ] || sysctl -q -w "$key=$value" || log "WARNING: could not restore $key=$value"
  done < <(sed -n 's/^SYSCTL //p' "$HOST_RECORD")
fi

# The pods' bridge (the veths went with the pods' network namespaces), and
# what conntrack remembers of connections to the pods.
if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
  log "removing bridge $NODE_BRIDGE"
  ip link del "$NODE_BRIDGE"
fi
subnet="$(sed -n 's/.*"subnet": "\([0-9./]*\)".*/\1/p' "$NODE_DIR/cni/net.d/10-sandbox.conflist" 2>/dev/null || true)"
if [ -n "$subnet" ] && command -v conntrack >/dev/null; then
  conntrack -D -s "$subnet" >/dev/null 2>&1 || true
  conntrack -D -d "$subnet" >/dev/null 2>&1 || true
fi

# cgroups under the kubelet's cgroupRoot, deepest first; a process left in
# one (a container whose engine was killed) is killed first.
while read -r h; do
  d="$h/$NODE_CGROUP"
  [ -d "$d" ] || continue
  while read -r pid; do
    [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
  done < <(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
  find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || log "WARNING: could not remove cgroup $d"
done < <(cgroup_hierarchies)

# Host paths the kubelet made, unless they were there before it.
if [ -n "$started" ]; then
  for p in "${KUBELET_HOST_PATHS[@]}"; do
    grep -qx "PATH $p" "$HOST_RECORD" || rm -rf "$p"
  done
fi

if [ -z "${SANDBOX_NODE_KEEP_OWNER:-}" ] && [ "$(cat "$NODE_OWNER_FILE" 2>/dev/null)" = "$NODE_DIR" ]; then
  rm -f "$NODE_OWNER_FILE"
fi
# Keep the logs (*.log) for a look afterwards; everything else goes.
find "$NODE_DIR" -mindepth 1 -maxdepth 1 ! -name '*.log' -exec rm -rf {} +
[ -z "$started" ] || log "real node stopped; host settings restored"
