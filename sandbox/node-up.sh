#!/usr/bin/env bash
# Start (or reuse) the sandbox's real node: a kubelet, kube-proxy and
# cri-dockerd on the sandbox's own Docker engine (docker-up.sh), registered as
# node "localhost" next to kwok's simulated nodes.  Pods scheduled there run
# real containers from the images `make up` builds in that engine (no
# registry, as on docker-desktop or minikube), and NodePorts answer on
# 127.0.0.1 through kube-proxy's iptables rules.
#
# While the real node runs, the simulated nodes carry the NoSchedule taint
# k8s-demo.sandbox/simulated, so workloads land on the real node with no
# change to them; a pod that tolerates the taint may still go to kwok.
#
# Changes to the host, all undone by node-down.sh (down.sh calls it):
#   - kernel settings: the kubelet sets vm.overcommit_memory, kernel.panic and
#     kernel.panic_on_oops; kube-proxy net.ipv4.conf.all.route_localnet (for
#     NodePorts on 127.0.0.1); the CNI bridge plugin net.ipv4.ip_forward.
#     Their values before are recorded in $NODE_DIR/host-before.env;
#   - iptables/ip6tables chains of the kubelet (KUBE-FIREWALL,
#     KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) and kube-proxy (KUBE-*);
#   - the pods' bridge k8sn-<hash> on a private /24 that no route uses;
#   - cgroups under k8s-demo-node-<hash> (the kubelet's cgroupRoot);
#   - /var/lib/kubelet (device-plugins socket) and /var/log/containers, which
#     the kubelet creates whatever its root dir is;
#   - a bind mount of the kubelet's root dir on itself.
# Only one real node runs per host (those chains and settings are the
# host's): a second sandbox asking for one is refused, naming the first.
#
# Installs Debian's containernetworking-plugins, conntrack, iptables and
# nftables when missing.  Needs root.  Progress goes to stderr.
# Environment: as up.sh (SANDBOX_NAME, KWOK_WORKDIR, SANDBOX_NODE_DIR),
# SANDBOX_NODE_TIMEOUT (seconds to wait for each component, default 120).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=node-common.sh
. "$here/node-common.sh"
# shellcheck source=versions.env
. "$here/versions.env"
BIN="$CACHE/bin"
CLUSTER_DIR="$KWOK_WORKDIR/clusters/$SANDBOX_NAME"
KUBECONFIG_SRC="$CLUSTER_DIR/kubeconfig.yaml"
TIMEOUT="${SANDBOX_NODE_TIMEOUT:-120}"
CNI_BIN=/usr/lib/cni
PAUSE_IMAGE="k8s-demo-sandbox/pause:3.10"

log() { echo "sandbox-node: $*" >&2; }
die() { echo "sandbox-node: ERROR: $*" >&2; exit 1; }
kc() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_SRC" "$@"; }

[ "$(id -u)" = 0 ] || die "the real node needs root (kubelet, iptables, bridge, cgroups); run as root or set SANDBOX_NODE=0"
for b in kubelet kube-proxy cri-dockerd sandbox-pause kubectl; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run sandbox/sandbox.sh build (make sandbox-tools)"
done
[ -f "$KUBECONFIG_SRC" ] || die "no cluster $SANDBOX_NAME in $CLUSTER_DIR: run sandbox/sandbox.sh up"
[ -S "$DOCKER_SOCK" ] || die "no Docker engine at $DOCKER_SOCK: run sandbox/docker-up.sh"

# ------------------------------------------------------------ Debian packages
missing=()
[ -x "$CNI_BIN/bridge" ] && [ -x "$CNI_BIN/host-local" ] && [ -x "$CNI_BIN/portmap" ] || missing+=(containernetworking-plugins)
command -v conntrack >/dev/null || missing+=(conntrack)
command -v iptables >/dev/null || missing+=(iptables)
command -v nft >/dev/null || missing+=(nftables)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian's ${missing[*]} ..."
  install_debian_packages "${missing[@]}" || die "apt-get install ${missing[*]} failed (exit $?)"
fi

# ------------------------------------------------------------ one real node per host
exec 6>"$NODE_OWNER_LOCK"
flock 6
owner="$(cat "$NODE_OWNER_FILE" 2>/dev/null || true)"
if [ -n "$owner" ] && [ "$owner" != "$NODE_DIR" ]; then
  if SANDBOX_NODE_DIR="$owner" bash -c '. "$1/node-common.sh"; our_node_pid kubelet || our_node_pid kube-proxy || our_node_pid cri-dockerd' _ "$here" >/dev/null 2>&1; then
    die "another sandbox's real node runs on this host ($owner); only one can (its iptables chains and kernel settings are the host's).
  Stop it with its sandbox-down (SANDBOX_NAME=$(basename "$owner") KWOK_WORKDIR=$(dirname "$(dirname "$owner")") sandbox/sandbox.sh down), or start this sandbox without one: SANDBOX_NODE=0."
  fi
  log "the real node of $owner is gone; taking over"
fi
for c in kubelet kube-proxy cri-dockerd; do
  while read -r pid; do
    [ -n "$pid" ] || continue
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$NODE_DIR/" ||
      die "a $c that is not this sandbox's runs on this host (pid $pid): the real node would fight it over iptables and /var/lib/kubelet"
  done < <(pgrep -x "$c" || true)
done

if our_node_pid kubelet >/dev/null && our_node_pid kube-proxy >/dev/null && our_node_pid cri-dockerd >/dev/null &&
  kc get node "$NODE_NAME" >/dev/null 2>&1; then
  log "real node $NODE_NAME of $SANDBOX_NAME is already running"
  exit 0
fi
# Half-started or crashed before: clear what is left, and put the host back.
SANDBOX_NODE_KEEP_OWNER=1 "$here/node-down.sh" >&2
echo "$NODE_DIR" >"$NODE_OWNER_FILE"
flock -u 6
exec 6>&-

mkdir -p "$NODE_DIR"
# ------------------------------------------------------------ host record
{
  for k in "${NODE_SYSCTLS[@]}"; do echo "SYSCTL $k=$(sysctl -n "$k")"; done
  # Tables iptables-nft creates and leaves empty after the chains are gone.
  nft list tables 2>/dev/null | sed 's/^table /TABLE /'
  for p in "${KUBELET_HOST_PATHS[@]}"; do [ -e "$p" ] && echo "PATH $p"; done
  true
} >"$HOST_RECORD.tmp"
mv -f "$HOST_RECORD.tmp" "$HOST_RECORD"

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# start NAME COMMAND...: run it in the background, detached from this script,
# with its pid in $NODE_DIR/NAME.pid and its output in $NODE_DIR/NAME.log.
start() {
  local name="$1"
  shift
  # shellcheck disable=SC2016 # $$ and $1 belong to the inner shell
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$NODE_DIR/$name.pid" "$@" \
    </dev/null >"$NODE_DIR/$name.log" 2>&1 &
}
deadline=$((SECONDS + TIMEOUT))
fail() {
  log "$1; last lines of the logs:"
  tail -n 15 "$NODE_DIR"/*.log >&2 2>/dev/null || true
  "$here/node-down.sh" >&2 || true
  die "$1"
}
wait_for() { # wait_for DESCRIPTION COMMAND...
  local what="$1"
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${TIMEOUT}s waiting for $what"
    sleep 0.5
  done
}

# ------------------------------------------------------------ pause image
# The pod sandbox's process (sandbox/pause): imported, since nothing can be pulled.
if ! sandbox_docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then
  log "importing $PAUSE_IMAGE ..."
  rootfs="$NODE_DIR/pause-rootfs"
  rm -rf "$rootfs"
  mkdir -p "$rootfs"
  cp "$BIN/sandbox-pause" "$rootfs/pause"
  tar -C "$rootfs" -c --owner=0 --group=0 . | sandbox_docker import \
    -c 'ENTRYPOINT ["/pause"]' \
    -c 'LABEL org.opencontainers.image.description="k8s-demo sandbox pause image (sandbox/pause), built locally: not registry.k8s.io/pause"' \
    - "$PAUSE_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi

# ------------------------------------------------------------ pod network (CNI)
exec 8>"$(dirname "$CACHE")/.docker-subnet.lock"
flock 8
POD_SUBNET="$(pick_subnet "$NODE_BRIDGE")" || die "no free 172.31.X.0/24 for the pods: every one overlaps a route"
# The bridge exists (with its gateway address) before the lock is let go, so
# a sandbox starting beside this one sees the subnet taken.
ip link add name "$NODE_BRIDGE" type bridge
ip addr add "${POD_SUBNET%.0/24}.1/24" dev "$NODE_BRIDGE"
ip link set "$NODE_BRIDGE" up
flock -u 8
exec 8>&-
log "pods on $POD_SUBNET (bridge $NODE_BRIDGE)"
mkdir -p "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/cache" "$NODE_DIR/cni/ipam"
# No ipMasq: pods talk only to the host (NodePort traffic from 127.0.0.1 is
# DNATed to them), so no POSTROUTING rules are needed.
cat >"$NODE_DIR/cni/net.d/10-sandbox.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "k8s-demo-sandbox", "plugins": [
  {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_SUBNET"}]], "dataDir": "$NODE_DIR/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF

# ------------------------------------------------------------ cgroups
# The kubelet's cgroupRoot must exist in every hierarchy it uses.
while read -r h; do
  mkdir -p "$h/$NODE_CGROUP"
done < <(cgroup_hierarchies)

# ------------------------------------------------------------ cri-dockerd
# Never --runtime-cgroups: with it, cri-dockerd moves every process named
# dockerd or containerd on the host (not only ours) into that cgroup.
log "starting cri-dockerd ..."
start cri-dockerd "$BIN/cri-dockerd" \
  --container-runtime-endpoint "unix://$CRI_SOCK" \
  --docker-endpoint "unix://$DOCKER_SOCK" \
  --network-plugin=cni \
  --cni-conf-dir "$NODE_DIR/cni/net.d" --cni-bin-dir "$CNI_BIN" --cni-cache-dir "$NODE_DIR/cni/cache" \
  --cri-dockerd-root-directory "$NODE_DIR/cri-dockerd" \
  --pod-infra-container-image "$PAUSE_IMAGE" \
  --streaming-bind-addr "127.0.0.1:$(free_port)"
wait_for "cri-dockerd on $CRI_SOCK" test -S "$CRI_SOCK"

# ------------------------------------------------------------ kubelet
cat >"$NODE_DIR/kubelet.yaml" <<EOF
# Generated by sandbox/node-up.sh.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This kind of machine has cgroup v1, which kubelet 1.35 refuses unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$NODE_CGROUP
containerRuntimeEndpoint: unix://$CRI_SOCK
address: 127.0.0.1
port: $(free_port)
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(free_port)
# The API server's client certificate (up.sh gives it kwok's admin one) is
# signed by the cluster CA: logs, exec and port-forward work.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $CLUSTER_DIR/pki/ca.crt}
authorization: {mode: AlwaysAllow}
failSwapOn: false
# Root here may lack CAP_SYS_RESOURCE: no negative OOM score for the kubelet itself.
oomScoreAdj: 0
# Never collect images: the sandbox's are built or imported locally and cannot be pulled again.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}
maxPods: 40
serializeImagePulls: false
podLogsDir: $NODE_DIR/pod-logs
EOF
log "starting kubelet ..."
start kubelet "$BIN/kubelet" \
  --config "$NODE_DIR/kubelet.yaml" \
  --kubeconfig "$KUBECONFIG_SRC" \
  --root-dir "$NODE_DIR/kubelet" \
  --cert-dir "$NODE_DIR/kubelet-pki" \
  --hostname-override "$NODE_NAME" \
  --node-labels "$NODE_LABEL=true"
node_ready() {
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
wait_for "node $NODE_NAME to be Ready" node_ready

# ------------------------------------------------------------ kube-proxy
proxy_healthz="$(free_port)"
cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
# Generated by sandbox/node-up.sh.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $KUBECONFIG_SRC}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_SUBNET
# NodePorts answer on loopback only (this sets route_localnet).
nodePortAddresses: ["127.0.0.0/8"]
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$proxy_healthz
metricsBindAddress: 127.0.0.1:$(free_port)
# Leave the host's conntrack table size and timeouts as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
log "starting kube-proxy ..."
start kube-proxy "$BIN/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml"
proxy_healthy() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "http://127.0.0.1:$proxy_healthz/healthz"
}
wait_for "kube-proxy to be healthy" proxy_healthy

# ------------------------------------------------------------ simulated nodes
# Workloads go to the real node: kwok's nodes take only pods that tolerate this.
while read -r n; do
  [ -n "$n" ] || continue
  kc taint node "$n" "$SIMULATED_TAINT=true:NoSchedule" --overwrite >/dev/null
done < <(kc get nodes -o jsonpath='{range .items[?(@.metadata.annotations.kwok\.x-k8s\.io/node=="fake")]}{.metadata.name}{"\n"}{end}')
log "ready: node $NODE_NAME (kubelet $KUBERNETES_VERSION, cri-dockerd $CRI_DOCKERD_VERSION), pods on $POD_SUBNET"
