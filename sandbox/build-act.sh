#!/usr/bin/env bash
# Build act, the local GitHub Actions runner `make workflows` runs the workflows with,
# from its Go module at ACT_VERSION (sandbox/versions.env), and print its path.
# It lives in a cache dir of its own, <cache root>/act-<version>/act, keyed by its
# version alone: pinning or bumping act never changes the other tools' key (see
# tools-path.sh), so it never forces their rebuild. A second run only prints the path.
# About 100 s cold on 2 cores (empty Go module and build caches).
# Environment: K8S_DEMO_SANDBOX_CACHE (cache root), GO (go binary), as build-tools.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$here/versions.env"
root="${K8S_DEMO_SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-demo/sandbox-tools}"
dir="$root/act-$ACT_VERSION"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"

if [ ! -x "$dir/act" ]; then
  mkdir -p "$root"
  # Only one build at a time; the binary appears whole (built aside, then renamed).
  exec 9>"$root/.build-act.lock"
  flock 9
  if [ ! -x "$dir/act" ]; then
    echo "build-act: building act $ACT_VERSION into $dir ..." >&2
    rm -rf "$dir.tmp"
    GOBIN="$dir.tmp" GOTOOLCHAIN=local GOWORK=off GOFLAGS="-trimpath -buildvcs=false" CGO_ENABLED=0 \
      "$GO" install -ldflags "-s -w" "github.com/nektos/act@$ACT_VERSION" >&2 ||
      { echo "build-act: ERROR: go install github.com/nektos/act@$ACT_VERSION failed" >&2; exit 1; }
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
  fi
fi
have="$(ACT_DISABLE_VERSION_CHECK=1 "$dir/act" --version)"
[ "$have" = "act version ${ACT_VERSION#v}" ] || { echo "build-act: ERROR: $dir/act is '$have', not $ACT_VERSION" >&2; exit 1; }
echo "$dir/act"
