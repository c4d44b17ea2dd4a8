#!/usr/bin/env bash
# Print the shell exports that point a shell at the sandbox (sandbox.sh up):
#   eval "$(sandbox/sandbox.sh env)"
# then `make up`, `pulumi`, `kubectl` and `docker` in this project use the
# sandbox's tools, cluster and Docker engine, and nothing else:
#   PATH        the sandbox tools first (pulumi, pulumi-language-python, kubectl, ...)
#   KUBECONFIG  the sandbox cluster's kubeconfig (the Kubernetes provider reads it)
#   DOCKER_HOST the sandbox's own Docker engine (the Docker provider reads it)
#   PULUMI_HOME the tools cache's, where the kubernetes and docker plugins are installed
# State stays where the Makefile puts it (file backend in .pulumi-state, empty
# passphrase) unless PULUMI_BACKEND_URL is set.
# Same environment as up.sh (SANDBOX_NAME, KWOK_WORKDIR, SANDBOX_KUBECONFIG,
# SANDBOX_DOCKER_DIR); prints a warning on stderr when the sandbox is not up.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=docker-common.sh
. "$here/docker-common.sh"
BIN="$CACHE/bin"
KCFG="${SANDBOX_KUBECONFIG:-$KWOK_WORKDIR/$SANDBOX_NAME.kubeconfig}"

warn() { echo "sandbox-env: WARNING: $*" >&2; }
[ -f "$CACHE/.complete" ] || warn "the tools in $BIN are not all built: run sandbox/sandbox.sh build (make sandbox-tools)"
[ -f "$KCFG" ] || warn "no kubeconfig at $KCFG: run sandbox/sandbox.sh up (make sandbox) with SANDBOX_NAME=$SANDBOX_NAME"
[ -S "$DOCKER_SOCK" ] || warn "no Docker engine at $DOCKER_SOCK: run sandbox/sandbox.sh up (make sandbox) as root with SANDBOX_NAME=$SANDBOX_NAME"

# Plugins come from PULUMI_HOME only: never downloaded, and not taken from
# PATH either (the providers in $BIN are the same binaries, but pulumi warns
# about every provider it finds on PATH).
# q VALUE: VALUE quoted for the shell that evals this.
q() { printf '%q' "$1"; }
cat <<EOF
export SANDBOX_NAME=$(q "$SANDBOX_NAME")
export KWOK_WORKDIR=$(q "$KWOK_WORKDIR")
export PATH=$(q "$BIN")\${PATH:+:\$PATH}
export KUBECONFIG=$(q "$KCFG")
export DOCKER_HOST=$(q "unix://$DOCKER_SOCK")
export PULUMI_HOME=$(q "$CACHE/pulumi-home")
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_IGNORE_AMBIENT_PLUGINS=true
EOF
