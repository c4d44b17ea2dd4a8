#!/usr/bin/env bash
# Delete the local kwok sandbox cluster started by sandbox/up.sh, stop its
# real node (node-down.sh: puts the host back as it was) and its Docker engine
# (docker-down.sh: keeps the image store, unless --purge).
#   sandbox/sandbox.sh down [--purge]
# Same environment as up.sh (SANDBOX_NAME, KWOK_WORKDIR, SANDBOX_KUBECONFIG).
# Idempotent: deleting a cluster that does not exist succeeds.
set -euo pipefail

case "${1:-}" in
  "" | --purge) ;;
  *) echo "usage: sandbox/sandbox.sh down [--purge]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="$("$here/tools-path.sh")"
BIN="$CACHE/bin"
NAME="${SANDBOX_NAME:-k8s-demo}"
export KWOK_WORKDIR="${KWOK_WORKDIR:-$CACHE/kwok}"
CLUSTER_DIR="$KWOK_WORKDIR/clusters/$NAME"
OUT_KUBECONFIG="${SANDBOX_KUBECONFIG:-$KWOK_WORKDIR/$NAME.kubeconfig}"

# The node first: it removes its pods' containers through the engine.
SANDBOX_NAME="$NAME" "$here/node-down.sh"
if [ -d "$CLUSTER_DIR" ]; then
  [ -x "$BIN/kwokctl" ] || {
    echo "sandbox-down: ERROR: $BIN/kwokctl is missing; cannot stop the components of $CLUSTER_DIR" >&2
    exit 1
  }
  echo "sandbox-down: deleting cluster $NAME ..." >&2
  # kwokctl delete insists on a kubeconfig to remove the cluster's context
  # from: give it a throwaway one so ~/.kube/config is never touched.
  scratch="$(mktemp)"
  trap 'rm -f "$scratch"' EXIT
  PATH="$BIN:$PATH" "$BIN/kwokctl" --name "$NAME" delete cluster --kubeconfig "$scratch" >&2
else
  echo "sandbox-down: no cluster $NAME in $KWOK_WORKDIR" >&2
fi
rm -f "$OUT_KUBECONFIG" "$KWOK_WORKDIR/$NAME.sandbox.yaml" "$KWOK_WORKDIR/$NAME.parts"
# Whether or not up.sh started one (SANDBOX_DOCKER): stopping none is a no-op.
SANDBOX_NAME="$NAME" "$here/docker-down.sh" "$@"
