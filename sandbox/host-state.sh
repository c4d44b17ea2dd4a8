#!/usr/bin/env bash
# Print what the sandbox of $SANDBOX_NAME can change on this host, one fact per
# line, so that two snapshots compare with diff:
#   sandbox/sandbox.sh host-state >before; sandbox/sandbox.sh up; ...; sandbox/sandbox.sh down
#   sandbox/sandbox.sh host-state >after; diff before after   # empty: nothing left behind
# Covers what the cluster, its Docker engine and its real node touch:
#   - kernel settings the kubelet, kube-proxy and the CNI bridge plugin change;
#   - iptables and ip6tables rules and chains (counters masked), nf_tables tables;
#   - network interfaces, IPv4 addresses and routes;
#   - mounts under the sandbox's directories and the kubelet's host paths;
#   - cgroups: the kubelet's (kubepods, its cgroupRoot) and the engine's parent;
#   - host paths the kubelet creates; the host-wide real-node owner file;
#   - processes of the sandbox (started with one of its directories) or named
#     kubelet, kube-proxy or cri-dockerd.
# Other sandboxes running side by side (make e2e runs two) come and go while
# this one runs: their bridges (k8sd-/k8sn-<hash> that are not this
# sandbox's) and the veths on them are left out, so only this sandbox shows.
# Same environment as up.sh (SANDBOX_NAME, KWOK_WORKDIR, ...).  Needs root for
# iptables-save.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=node-common.sh
. "$here/node-common.sh"
CLUSTER_DIR="$KWOK_WORKDIR/clusters/$SANDBOX_NAME"

# not_others: drop lines naming another sandbox's bridge.
not_others() {
  awk -v a="$DOCKER_BRIDGE" -v b="$NODE_BRIDGE" '{
    line = $0
    while (match(line, /k8s[dn]-[0-9a-f]+/)) {
      name = substr(line, RSTART, RLENGTH)
      if (name != a && name != b) next
      line = substr(line, RSTART + RLENGTH)
    }
    print
  }'
}

for k in "${NODE_SYSCTLS[@]}" net.ipv4.conf.all.forwarding net.ipv4.conf.default.forwarding \
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables; do
  echo "sysctl $k=$(sysctl -n "$k" 2>/dev/null || echo absent)"
done

for save in iptables-save ip6tables-save; do
  if command -v "$save" >/dev/null; then
    # Counters change by themselves; the generated-by comments carry a date.
    "$save" 2>/dev/null | sed -e 's/\[[0-9]*:[0-9]*\]/[-]/' -e '/^#/d' | sed "s/^/$save /"
  fi
done
if command -v nft >/dev/null; then
  nft list tables 2>/dev/null | sed 's/^/nft /'
fi

# Interfaces: a veth on no bridge is half made or half gone (a container
# starting or stopping); one on another sandbox's bridge is that sandbox's.
ip -o link show | awk '{
  name = $2; sub(/:$/, "", name); sub(/@.*/, "", name)
  master = ""
  for (i = 3; i < NF; i++) if ($i == "master") master = $(i + 1)
  if (name ~ /^veth/ && master == "") next
  print "link " name (master != "" ? " master " master : "")
}' | not_others
ip -o -4 addr show | awk '{ print "addr " $2, $4 }' | not_others
ip -4 route show table all | sed 's/^/route /' | not_others

awk -v d1="$DOCKER_DIR/" -v d2="$NODE_DIR/" -v d3="$CLUSTER_DIR/" '
  index($5, d1) == 1 || index($5, d2) == 1 || index($5, d3) == 1 || $5 ~ "^/var/lib/kubelet" { print "mount " $5 }
' /proc/self/mountinfo | sort

while read -r h; do
  for c in kubepods "$NODE_CGROUP" "${DOCKER_CGROUP_PARENT#/}"; do
    [ -d "$h/$c" ] && echo "cgroup $h/$c"
  done
done < <(cgroup_hierarchies)
true

for p in "${KUBELET_HOST_PATHS[@]}" "$NODE_OWNER_FILE"; do
  [ -e "$p" ] && echo "path $p"
done
true

for p in /proc/[0-9]*; do
  cmd="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" || continue
  comm="$(cat 2>/dev/null <"$p/comm")" || continue
  case "$comm" in kubelet | kube-proxy | cri-dockerd) echo "process $comm"; continue ;; esac
  case "$cmd" in *"$DOCKER_DIR/"* | *"$NODE_DIR/"* | *"$CLUSTER_DIR/"*) echo "process $comm" ;; esac
done | sort
