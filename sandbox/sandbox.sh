#!/usr/bin/env bash
# The sandbox's one entry point: every sandbox command is a subcommand of this
# script, and each runs the script next to it that implements it.
#   sandbox/sandbox.sh --help
# The Makefile's sandbox targets (sandbox-tools, sandbox, sandbox-down,
# sandbox-status, sandbox-registry, sandbox-registry-down) call it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  cat <<'EOF'
usage: sandbox/sandbox.sh COMMAND [ARGS]

A local Kubernetes sandbox on 127.0.0.1: a kwok control plane, one real node
and a Docker engine of its own, from tools built from pinned sources.

commands:
  build                    build the pinned tools into the per-user cache
                           (cold: about 27 min on 2 cores; warm: seconds)
  up                       start or reuse the sandbox: the cluster, and as root
                           its Docker engine (with the stand-in base images) and
                           its real node; prints the kubeconfig path on stdout
  down [--purge]           stop the real node and the engine, delete the cluster:
                           the host as it was (--purge: the engine's images too)
  status                   what runs: cluster, real node, engine, registry;
                           exits 0 when everything `up` started runs, else 1
  env                      print the exports of a sandbox shell:
                             eval "$(sandbox/sandbox.sh env)"
  registry start [--read-only]
                           start the sandbox's registry on 127.0.0.1 (read-only:
                           it refuses pushes); prints its address on stdout
  registry stop            stop it (its images are kept)
  registry status          is it running; exits 0 when it answers, else 1
  smoke-test [KUBECONFIG]  check a running sandbox's cluster with kubectl
  host-state               print what the sandbox can change on this host, one
                           fact per line (diff two runs to see what is left)
  tools-path               print the tools cache directory for these versions
  help, --help, -h         this text

Which sandbox: SANDBOX_NAME (default k8s-demo) in KWOK_WORKDIR (default
<tools cache>/kwok); up takes SANDBOX_DOCKER=0 (the cluster only, no root) and
SANDBOX_NODE=0 (no real node).  Every variable: sandbox/README.md.
EOF
}

[ $# -gt 0 ] || { usage >&2; exit 2; }
command="$1"
shift
# only_args MAX USAGE ARGS...: refuse more than MAX arguments.
only_args() {
  local max="$1" usage_line="$2"
  shift 2
  [ $# -le "$max" ] || { echo "usage: sandbox/sandbox.sh $usage_line" >&2; exit 2; }
}
case "$command" in
  build) only_args 0 build "$@"; exec "$here/build-tools.sh" ;;
  up) only_args 0 up "$@"; exec "$here/up.sh" ;;
  down) only_args 1 "down [--purge]" "$@"; exec "$here/down.sh" "$@" ;;
  status) only_args 0 status "$@"; exec "$here/status.sh" ;;
  env) only_args 0 env "$@"; exec "$here/env.sh" ;;
  registry) exec "$here/registry.sh" "$@" ;;
  smoke-test) only_args 1 "smoke-test [KUBECONFIG]" "$@"; exec "$here/smoke-test.sh" "$@" ;;
  host-state) only_args 0 host-state "$@"; exec "$here/host-state.sh" ;;
  tools-path) only_args 0 tools-path "$@"; exec "$here/tools-path.sh" ;;
  help | --help | -h) usage ;;
  *)
    echo "sandbox/sandbox.sh: unknown command '$command'" >&2
    usage >&2
    exit 2
    ;;
esac
