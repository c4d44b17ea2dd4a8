#!/usr/bin/env bash
# Build the pinned local-sandbox tools from Go modules into a per-user cache:
#   etcd, kwok, kwokctl, kube-apiserver, kube-controller-manager,
#   kube-scheduler, kubectl, pulumi, pulumi-resource-kubernetes
# Versions come from sandbox/versions.env; the cache dir is printed by
# sandbox/tools-path.sh.  Each tool is built only when missing, so a second run
# takes seconds.  A cold build takes about an hour on 2 cores.
#
# Environment:
#   K8S_DEMO_SANDBOX_CACHE  cache root (default ~/.cache/k8s-demo/sandbox-tools)
#   SANDBOX_BUILD_JOBS      go build -p value (default 2)
#   GO                      go binary (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$here/versions.env"
CACHE="$("$here/tools-path.sh")"
BIN="$CACHE/bin"
WORK="$CACHE/work"
LOG="$(dirname "$CACHE")/build.log"
mkdir -p "$BIN" "$WORK"

# Everything printed also goes to the shared build log.
exec > >(tee -a "$LOG") 2>&1

# Only one build per cache root at a time.
exec 9>"$(dirname "$CACHE")/.build.lock"
if ! flock -n 9; then
  echo "build-tools: another build holds $(dirname "$CACHE")/.build.lock; waiting ..."
  flock 9
fi

GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
JOBS="${SANDBOX_BUILD_JOBS:-2}"
export GOTOOLCHAIN=local GOWORK=off GOFLAGS="-trimpath -buildvcs=false" CGO_ENABLED=0
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_HOME="$CACHE/pulumi-home"

gover="$("$GO" env GOVERSION)"
case "$gover" in
  go1.2[6-9]* | go1.[3-9][0-9]*) ;;
  *) echo "build-tools: need Go >= 1.26 (kwok $KWOK_VERSION requires it), have $gover" >&2; exit 1 ;;
esac

TOTAL=7
start_all=$SECONDS
step_start=$SECONDS
step() { # step N "message"
  step_start=$SECONDS
  echo "[$1/$TOTAL] $2"
}
done_step() { echo "      done in $((SECONDS - step_start))s"; }
have() { local b; for b in "$@"; do [ -x "$BIN/$b" ] || return 1; done; }
die() { echo "build-tools: ERROR: $*" >&2; exit 1; }

# new_wrapper DIR MODULE: fresh throwaway module in DIR.
new_wrapper() {
  rm -rf "$1"
  mkdir -p "$1"
  (cd "$1" && "$GO" mod init "$2" >/dev/null 2>&1)
}
# mod_field MOD@VER FIELD: a field (Dir, GoMod) of `go mod download -json`.
mod_field() {
  (cd "$WORK" && "$GO" mod download -json "$1") |
    sed -n "s/^[[:space:]]*\"$2\": \"\\(.*\\)\",\$/\\1/p"
}
# install_from DIR NAME...: move freshly built binaries into $BIN.
install_from() {
  local d="$1" b
  shift
  for b in "$@"; do
    [ -x "$d/$b" ] || die "build produced no $b"
    mv -f "$d/$b" "$BIN/$b"
  done
}

echo "build-tools: $(date -u +%FT%TZ) cache=$CACHE go=$gover jobs=$JOBS"
cp "$here/versions.env" "$CACHE/versions.env"

# Version checks read a tool's whole output before matching it: `tool | grep -q`
# fails under pipefail whenever grep exits before the tool has written all
# (SIGPIPE), which made a warm re-run stop at "kubectl client version is not ...".

# ---------------------------------------------------------------- 1. etcd
if have etcd; then
  echo "[1/$TOTAL] etcd $ETCD_VERSION: already built"
else
  step 1 "building etcd $ETCD_VERSION ..."
  w="$WORK/etcd"
  new_wrapper "$w" k8s-demo.sandbox/etcd
  cat >"$w/main.go" <<'EOF'
// Throwaway wrapper: the etcd server binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  (
    cd "$w"
    args=()
    for m in api/v3 client/pkg/v3 client/v3 pkg/v3 server/v3; do
      args+=("-require=go.etcd.io/etcd/$m@$ETCD_VERSION" "-replace=go.etcd.io/etcd/$m=go.etcd.io/etcd/$m@$ETCD_VERSION")
    done
    "$GO" mod edit "${args[@]}"
    "$GO" mod tidy
    "$GO" build -p "$JOBS" -o out/etcd .
  )
  install_from "$w/out" etcd
  done_step
fi
grep -q "etcd Version: ${ETCD_VERSION#v}" <<<"$("$BIN/etcd" --version)" || die "etcd --version is not ${ETCD_VERSION#v}"

# ---------------------------------------------------------------- 2. kwok
if have kwok kwokctl; then
  echo "[2/$TOTAL] kwok, kwokctl $KWOK_VERSION: already built"
else
  step 2 "building kwok, kwokctl $KWOK_VERSION ..."
  w="$WORK/kwok"
  new_wrapper "$w" k8s-demo.sandbox/kwok
  (
    cd "$w"
    "$GO" mod edit -require="sigs.k8s.io/kwok@$KWOK_VERSION"
    ld="-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBERNETES_VERSION#v}"
    "$GO" build -mod=mod -p "$JOBS" -ldflags "$ld" -o out/ sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
  )
  install_from "$w/out" kwok kwokctl
  done_step
fi
"$BIN/kwokctl" --version >/dev/null || die "kwokctl --version failed"

# ---------------------------------------------------------------- 3. kubernetes
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
if have "${K8S_BINS[@]}"; then
  echo "[3/$TOTAL] ${K8S_BINS[*]} $KUBERNETES_VERSION: already built"
else
  step 3 "building ${K8S_BINS[*]} $KUBERNETES_VERSION (the long one) ..."
  w="$WORK/kubernetes"
  new_wrapper "$w" k8s-demo.sandbox/kubernetes
  kmod="$(mod_field "k8s.io/kubernetes@$KUBERNETES_VERSION" GoMod)"
  [ -f "$kmod" ] || die "cannot download k8s.io/kubernetes@$KUBERNETES_VERSION"
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  args=("-require=k8s.io/kubernetes@$KUBERNETES_VERSION")
  # k8s.io/kubernetes replaces each k8s.io/<staging> module by ./staging/...;
  # point those at the published staging module versions instead.
  while read -r m; do
    args+=("-replace=$m=$m@$staging_version")
  done < <(awk '{ if ($1 == "replace") { $1 = ""; $0 = $0 } }
                $2 == "=>" && $3 ~ /^\.\.?\// { print $1 }' "$kmod")
  # Keep its godebug settings (single line or block form).
  while read -r g; do
    args+=("-godebug=$g")
  done < <(awk '/^godebug[[:space:]]*\(/ { b = 1; next }
                b && /^\)/ { b = 0; next }
                b { print $1; next }
                /^godebug[[:space:]]/ { print $2 }' "$kmod")
  (cd "$w" && "$GO" mod edit "${args[@]}")
  minor="${KUBERNETES_VERSION#v1.}"
  minor="${minor%%.*}"
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  pkgs=()
  for b in "${K8S_BINS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  (cd "$w" && "$GO" build -mod=mod -p "$JOBS" -ldflags "$ld" -o out/ "${pkgs[@]}")
  install_from "$w/out" "${K8S_BINS[@]}"
  done_step
fi
grep -qx "Kubernetes $KUBERNETES_VERSION" <<<"$("$BIN/kube-apiserver" --version)" || die "kube-apiserver --version is not $KUBERNETES_VERSION"
grep -q "Client Version: $KUBERNETES_VERSION" <<<"$("$BIN/kubectl" version --client)" || die "kubectl client version is not $KUBERNETES_VERSION"

# ---------------------------------------------------------------- 4. pulumi CLI
if have pulumi; then
  echo "[4/$TOTAL] pulumi $PULUMI_VERSION: already built"
else
  step 4 "building pulumi $PULUMI_VERSION ..."
  w="$WORK/pulumi"
  new_wrapper "$w" k8s-demo.sandbox/pulumi
  pmod="$(mod_field "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" GoMod)"
  [ -f "$pmod" ] || die "cannot download github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION"
  args=("-require=github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" "-require=github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION")
  # pkg/v3's own module-to-module replaces (e.g. the clipboard fork) must be
  # repeated here; its ../sdk replace is covered by requiring sdk/v3.
  while read -r old new ver; do
    args+=("-replace=$old=$new@$ver")
  done < <(awk '{ if ($1 == "replace") { $1 = ""; $0 = $0 } }
                $2 == "=>" && $3 !~ /^\.\.?\// && NF == 4 { print $1, $3, $4 }' "$pmod")
  (
    cd "$w"
    "$GO" mod edit "${args[@]}"
    "$GO" build -mod=mod -p "$JOBS" \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
      -o out/ github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  )
  install_from "$w/out" pulumi
  done_step
fi
[ "$("$BIN/pulumi" version)" = "$PULUMI_VERSION" ] || die "pulumi version is not $PULUMI_VERSION"

# ---------------------------------------------------------------- 5+6. kubernetes provider
PROVIDER=pulumi-resource-kubernetes
PMOD=github.com/pulumi/pulumi-kubernetes/provider/v4
if have "$PROVIDER"; then
  echo "[5/$TOTAL] $PROVIDER $PULUMI_KUBERNETES_VERSION: already generated"
  echo "[6/$TOTAL] $PROVIDER $PULUMI_KUBERNETES_VERSION: already built"
else
  step 5 "generating embedded schema for $PROVIDER $PULUMI_KUBERNETES_VERSION ..."
  # The provider's main embeds schema-embed.json and terraform-mapping-embed.json,
  # which its go:generate step (generate.go) derives from schema.json and
  # terraform-mapping.json; they are not in the published module.  Build from a
  # writable copy of the module so that step can run.
  src="$(mod_field "$PMOD@$PULUMI_KUBERNETES_MODULE_VERSION" Dir)"
  [ -d "$src" ] || die "cannot download $PMOD@$PULUMI_KUBERNETES_MODULE_VERSION"
  w="$WORK/pulumi-kubernetes-provider"
  rm -rf "$w"
  cp -r "$src" "$w"
  chmod -R u+w "$w"
  (
    cd "$w"
    # Its ../sdk replace points into the source repo; use the required version.
    "$GO" mod edit -dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4
    cd cmd/$PROVIDER
    VERSION="$PULUMI_KUBERNETES_VERSION" "$GO" run -mod=mod ./generate.go
    [ -s schema-embed.json ] && [ -s terraform-mapping-embed.json ]
  ) || die "generating the provider's embedded files failed"
  done_step
  step 6 "building $PROVIDER $PULUMI_KUBERNETES_VERSION ..."
  (
    cd "$w"
    "$GO" build -mod=mod -p "$JOBS" \
      -ldflags "-s -w -X $PMOD/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" \
      -o out/ ./cmd/$PROVIDER
  )
  install_from "$w/out" "$PROVIDER"
  done_step
fi

# ---------------------------------------------------------------- 7. plugin install
plugin_listed() {
  "$BIN/pulumi" plugin ls 2>/dev/null | awk '$1 == "kubernetes" && $2 == "resource" && $3 == v { f = 1 } END { exit !f }' v="$PULUMI_KUBERNETES_VERSION"
}
if plugin_listed; then
  echo "[7/$TOTAL] kubernetes plugin $PULUMI_KUBERNETES_VERSION: already installed in $PULUMI_HOME"
else
  step 7 "installing kubernetes plugin $PULUMI_KUBERNETES_VERSION into $PULUMI_HOME ..."
  "$BIN/pulumi" plugin install resource kubernetes "$PULUMI_KUBERNETES_VERSION" --file "$BIN/$PROVIDER"
  plugin_listed || die "pulumi plugin ls does not list kubernetes $PULUMI_KUBERNETES_VERSION"
  done_step
fi

touch "$CACHE/.complete"
echo "build-tools: all tools ready in $BIN ($((SECONDS - start_all))s)"
