#!/usr/bin/env bash
# What of sandbox $SANDBOX_NAME runs, one line per part, then a verdict:
#   sandbox/sandbox.sh status
#   - cluster: its API server answers /readyz;
#   - node: the kubelet, kube-proxy and cri-dockerd of its own run, and node
#     "localhost" is Ready;
#   - engine: its own dockerd runs and answers on its socket;
#   - registry: registry.sh status (started on its own with `registry start`,
#     so it is shown but does not count).
# Exits 0 when every part that the last completed `up` started (it writes them
# to $KWOK_WORKDIR/<name>.parts, `down` removes that file) runs; 1 when no
# `up` completed since the last `down`, or one of its parts is not running.
# Reads only: changes nothing.  Asking the engine needs its socket, so root.
# Same environment as up.sh (SANDBOX_NAME, KWOK_WORKDIR, SANDBOX_KUBECONFIG).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=node-common.sh
. "$here/node-common.sh"
BIN="$CACHE/bin"
CLUSTER_DIR="$KWOK_WORKDIR/clusters/$SANDBOX_NAME"
KUBECONFIG_SRC="$CLUSTER_DIR/kubeconfig.yaml"
KCFG="${SANDBOX_KUBECONFIG:-$KWOK_WORKDIR/$SANDBOX_NAME.kubeconfig}"
PARTS_FILE="$KWOK_WORKDIR/$SANDBOX_NAME.parts"

kc() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_SRC" --request-timeout=5s "$@"; }
row() { printf '%-9s %s\n' "$1" "$2"; }
# The parts found running.
running=()

echo "sandbox $SANDBOX_NAME in $KWOK_WORKDIR"

# ------------------------------------------------------------ cluster
cluster_up=""
if [ ! -x "$BIN/kubectl" ]; then
  row cluster "unknown: $BIN/kubectl is missing (sandbox/sandbox.sh build)"
elif [ ! -f "$KUBECONFIG_SRC" ]; then
  row cluster "absent: no cluster in $CLUSTER_DIR"
elif kc get --raw /readyz >/dev/null 2>&1; then
  server="$(kc config view -o jsonpath='{.clusters[0].cluster.server}')"
  nodes="$(kc get nodes --no-headers 2>/dev/null | wc -l)"
  row cluster "running: $server, $nodes nodes, kubeconfig $KCFG"
  running+=(cluster)
  cluster_up=1
else
  row cluster "stopped: its API server does not answer"
fi

# ------------------------------------------------------------ real node
pids=()
missing=()
for component in kubelet kube-proxy cri-dockerd; do
  if pid="$(our_node_pid "$component")"; then
    pids+=("$component $pid")
  else
    missing+=("$component")
  fi
done
listed="$(printf '%s, ' "${pids[@]}")"
listed="${listed%, }"
if [ "${#pids[@]}" = 0 ]; then
  row node "not running"
elif [ "${#missing[@]}" -gt 0 ]; then
  row node "half running: $listed; not running: ${missing[*]}"
else
  ready=""
  [ -z "$cluster_up" ] ||
    ready="$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
  if [ "$ready" = True ]; then
    row node "running: $NODE_NAME Ready ($listed)"
    running+=(node)
  else
    row node "not Ready: $NODE_NAME ($listed)"
  fi
fi

# ------------------------------------------------------------ Docker engine
if ! dockerd_pid="$(our_pid "$DOCKER_PIDFILE")"; then
  row engine "not running ($DOCKER_DIR)"
elif version="$(sandbox_docker version --format '{{.Server.Version}}' 2>/dev/null)"; then
  row engine "running: dockerd $version on unix://$DOCKER_SOCK (pid $dockerd_pid)"
  running+=(engine)
else
  row engine "not answering on unix://$DOCKER_SOCK (dockerd pid $dockerd_pid; its socket needs root)"
fi

# ------------------------------------------------------------ registry
row registry "$("$here/registry.sh" status || true)"

# ------------------------------------------------------------ verdict
if [ ! -f "$PARTS_FILE" ]; then
  echo "not up: no sandbox/sandbox.sh up completed for $SANDBOX_NAME since it last went down"
  exit 1
fi
read -r -a wanted <"$PARTS_FILE"
down=()
for part in "${wanted[@]}"; do
  case " ${running[*]} " in
    *" $part "*) ;;
    *) down+=("$part") ;;
  esac
done
if [ "${#down[@]}" -gt 0 ]; then
  echo "not up: ${down[*]} not running (up started: ${wanted[*]})"
  exit 1
fi
echo "up: ${wanted[*]}"
