# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Sourced by node-up.sh, node-down.sh and host-state.sh: where the real node
# of sandbox $SANDBOX_NAME lives.  It sources docker-common.sh: the node runs
# its pods on the sandbox's own Docker engine.
#
# The real node is a kubelet, kube-proxy and cri-dockerd on the sandbox's own
# Docker engine, registered as node "localhost" next to kwok's simulated nodes.
# Its files, sockets, pid files and logs are all in one directory:
#   SANDBOX_NODE_DIR  default $KWOK_WORKDIR/node/<name>

# shellcheck source=docker-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/docker-common.sh"
NODE_DIR="${SANDBOX_NODE_DIR:-$KWOK_WORKDIR/node/$SANDBOX_NAME}"
# The API server reaches the kubelet at the node's name: "localhost" resolves
# everywhere, where a made-up name would need a DNS entry (kubectl logs/exec).
NODE_NAME=localhost
# Names derived from the directory, so two sandboxes never share one.
NODE_HASH="$(printf '%s' "$NODE_DIR" | sha256sum | cut -c1-8)"
# The pods' bridge (CNI bridge plugin); at most 15 characters.
NODE_BRIDGE="k8sn-$NODE_HASH"
# The kubelet's cgroupRoot: the kubepods hierarchy goes under it, not at the top.
NODE_CGROUP="k8s-demo-node-$NODE_HASH"
# On the real node; workloads select it with no change (the simulated nodes
# carry SIMULATED_TAINT while a real node runs, see node-up.sh).
NODE_LABEL="k8s-demo.sandbox/real-node"
SIMULATED_TAINT="k8s-demo.sandbox/simulated"
CRI_SOCK="$NODE_DIR/cri-dockerd.sock"
# Host-wide: kube-proxy's and the kubelet's iptables chains and the kernel
# settings they change are the host's, so only one real node runs per host.
# This file names the NODE_DIR of the sandbox that runs it.
NODE_OWNER_FILE=/run/k8s-demo-sandbox-node
NODE_OWNER_LOCK="$(dirname "$CACHE")/.real-node.lock"
# The host settings node-up.sh found, which node-down.sh puts back.
HOST_RECORD="$NODE_DIR/host-before.env"
# Paths the kubelet creates whatever its --root-dir says (hard-coded in 1.35).
KUBELET_HOST_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods)
# Kernel settings the kubelet (vm.*, kernel.*), kube-proxy (route_localnet)
# and the CNI bridge plugin (ip_forward, for isGateway) change.
NODE_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.conf.all.route_localnet net.ipv4.ip_forward)

# our_node_pid NAME: the pid in $NODE_DIR/NAME.pid if that process is alive
# and was started with a path under $NODE_DIR (a reused pid is never ours).
our_node_pid() { pid_from "$NODE_DIR/$1.pid" "$NODE_DIR/"; }

# cgroup_hierarchies: the mount point of each cgroup hierarchy (v1: one per
# controller set; v2: the one unified tree), each once.
cgroup_hierarchies() {
  awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts | sort -u
}
