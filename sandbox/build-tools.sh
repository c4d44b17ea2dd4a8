#!/usr/bin/env bash
# Build the pinned local-sandbox tools into a per-user cache:
#   etcd, kwok, kwokctl, kube-apiserver, kube-controller-manager,
#   kube-scheduler, kubectl, kubelet, kube-proxy, pulumi,
#   pulumi-resource-kubernetes, registry, cri-dockerd (from Go modules); the
#   sandbox's own pause binary (sandbox/pause); and from git sources at pinned
#   commits (the module proxy does not serve them): pulumi-language-python
#   (+ its exec shim) and pulumi-resource-docker.
# Versions and commits come from sandbox/versions.env; the cache dir is printed
# by sandbox/tools-path.sh.  Each tool is built only when missing, so a second
# run takes seconds.  A cold build (empty Go module and build caches) took 27 min
# on an otherwise idle 2-core machine, with the two lanes below.
# Nothing fetched or built is kept in the repository: only this recipe.
#
# Environment:
#   K8S_DEMO_SANDBOX_CACHE  cache root (default ~/.cache/k8s-demo/sandbox-tools)
#   SANDBOX_BUILD_JOBS      go build -p value (default 2)
#   GO                      go binary (default: go on PATH, else /usr/local/go/bin/go)
#   K8S_DEMO_PULUMI_GIT, K8S_DEMO_PULUMI_DOCKER_GIT, K8S_DEMO_TF_DOCKER_GIT
#       where to read pulumi/pulumi, pulumi/pulumi-docker and
#       kreuzwerker/terraform-provider-docker from: a git URL (default: the
#       GitHub one; only the pinned commit is fetched, into <cache root>/git/)
#       or a local git dir, bare or not, that has the pinned commit
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
# -dwarf=false: every binary is linked with -s -w (no symbols, no DWARF), so
# the debug information the compiler would make for each package is wasted work.
export GOTOOLCHAIN=local GOWORK=off GOFLAGS="-trimpath -buildvcs=false -gcflags=all=-dwarf=false" CGO_ENABLED=0
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_HOME="$CACHE/pulumi-home"

gover="$("$GO" env GOVERSION)"
case "$gover" in
  go1.2[6-9]* | go1.[3-9][0-9]*) ;;
  *) echo "build-tools: need Go >= 1.26 (kwok $KWOK_VERSION requires it), have $gover" >&2; exit 1 ;;
esac

TOTAL=14
start_all=$SECONDS
step_start=$SECONDS
step_n=""
step() { # step N "message"
  step_start=$SECONDS
  step_n="$1"
  echo "[$1/$TOTAL] $2"
}
# (The two lanes' lines interleave: say which step is done.)
done_step() { echo "[$step_n/$TOTAL] done in $((SECONDS - step_start))s"; }
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

# pulumi_mod_edit DIR: make the wrapper module in DIR require the Pulumi
# pkg/v3 and sdk/v3 modules at $PULUMI_VERSION.
pulumi_mod_edit() {
  local pmod args old new ver
  pmod="$(mod_field "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" GoMod)"
  [ -f "$pmod" ] || die "cannot download github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION"
  args=("-require=github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" "-require=github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION")
  # pkg/v3's own module-to-module replaces (e.g. the clipboard fork) must be
  # repeated here; its ../sdk replace is covered by requiring sdk/v3.
  while read -r old new ver; do
    args+=("-replace=$old=$new@$ver")
  done < <(awk '{ if ($1 == "replace") { $1 = ""; $0 = $0 } }
                $2 == "=>" && $3 !~ /^\.\.?\// && NF == 4 { print $1, $3, $4 }' "$pmod")
  (cd "$1" && "$GO" mod edit "${args[@]}")
}

GIT_ROOT="$(dirname "$CACHE")/git"
# shellcheck source=git-source.sh
. "$here/git-source.sh"
# git_extract GITDIR COMMIT DEST [PATH...]: the files of COMMIT (only PATHs,
# when given) into DEST.  Snapshots may lack unrelated large blobs, so ask
# only for what is needed; git's complaints are shown only when it fails.
git_extract() {
  local gd="$1" commit="$2" dest="$3" err
  shift 3
  mkdir -p "$dest"
  err="$(mktemp)"
  if ! git --git-dir="$gd" archive --format=tar "$commit" -- "$@" 2>"$err" | tar -x -C "$dest"; then
    cat "$err" >&2
    rm -f "$err"
    die "cannot extract ${*:-everything} of $commit from $gd"
  fi
  rm -f "$err"
}

echo "build-tools: $(date -u +%FT%TZ) cache=$CACHE go=$gover jobs=$JOBS"
cp "$here/versions.env" "$CACHE/versions.env"

# Version checks read a tool's whole output before matching it: `tool | grep -q`
# fails under pipefail whenever grep exits before the tool has written all
# (SIGPIPE), which made a warm re-run stop at "kubectl client version is not ...".

# The steps run in two lanes side by side: Go builds of the big binaries keep
# both cores busy only part of the time (module downloads, the single-threaded
# link of each binary, schema generation), so two lanes fill the gaps.  Each
# lane's steps depend only on earlier steps of the same lane.
# SANDBOX_BUILD_LANES=1 runs them one after the other instead.

# Lane 1: the cluster (etcd, kwok, Kubernetes, registry, cri-dockerd, pause).
lane_cluster() {
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
  # kubelet and kube-proxy are the real node's (sandbox/node-up.sh).
  K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
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
  grep -qx "Kubernetes $KUBERNETES_VERSION" <<<"$("$BIN/kubelet" --version)" || die "kubelet --version is not $KUBERNETES_VERSION"

  # ---------------------------------------------------------------- 12. registry
  # CNCF distribution's registry, for a local registry on 127.0.0.1.
  if have registry; then
    echo "[12/$TOTAL] registry $DISTRIBUTION_VERSION: already built"
  else
    step 12 "building registry $DISTRIBUTION_VERSION ..."
    w="$WORK/registry"
    rm -rf "$w"
    mkdir -p "$w"
    (
      cd "$w"
      GOBIN="$w/out" "$GO" install -p "$JOBS" \
        -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$DISTRIBUTION_VERSION" \
        "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION"
    )
    install_from "$w/out" registry
    done_step
  fi
  grep -q " $DISTRIBUTION_VERSION\$" <<<"$("$BIN/registry" --version)" || die "registry --version is not $DISTRIBUTION_VERSION"

  # ---------------------------------------------------------------- 13. cri-dockerd
  # The real node's container runtime interface on the sandbox's own dockerd,
  # with one patch of ours.  `go install` refuses the module (its go.mod has replace directives), so it
  # is built in a writable copy of the module, resolving with -mod=mod.
  if have cri-dockerd; then
    echo "[13/$TOTAL] cri-dockerd $CRI_DOCKERD_VERSION: already built"
  else
    step 13 "building cri-dockerd $CRI_DOCKERD_VERSION ..."
    src="$(mod_field "github.com/Mirantis/cri-dockerd@$CRI_DOCKERD_VERSION" Dir)"
    [ -d "$src" ] || die "cannot download github.com/Mirantis/cri-dockerd@$CRI_DOCKERD_VERSION"
    w="$WORK/cri-dockerd"
    rm -rf "$w"
    cp -r "$src" "$w"
    chmod -R u+w "$w"
    # Our own patch: no periodic work on every dockerd/containerd of the host
    # unless --runtime-cgroups is given (see the patch's header).
    (cd "$w" && git apply "$here/patches/cri-dockerd-leave-other-engines.patch") ||
      die "cannot apply patches/cri-dockerd-leave-other-engines.patch to cri-dockerd $CRI_DOCKERD_VERSION"
    (cd "$w" && GOFLAGS="$GOFLAGS -mod=mod" "$GO" build -p "$JOBS" \
      -ldflags "-s -w -X github.com/Mirantis/cri-dockerd/cmd/version.Version=${CRI_DOCKERD_VERSION#v}" \
      -o out/cri-dockerd .)
    install_from "$w/out" cri-dockerd
    done_step
  fi
  grep -q "^cri-dockerd ${CRI_DOCKERD_VERSION#v} " <<<"$("$BIN/cri-dockerd" --version 2>&1)" || die "cri-dockerd --version is not $CRI_DOCKERD_VERSION"

  # ---------------------------------------------------------------- 14. pause
  # The pod-infrastructure binary of the real node's pause image (our own, in
  # sandbox/pause; node-up.sh imports it as an image, since nothing is pulled).
  if have sandbox-pause; then
    echo "[14/$TOTAL] sandbox-pause: already built"
  else
    step 14 "building sandbox-pause ..."
    (cd "$here/pause" && "$GO" build -ldflags "-s -w" -o "$WORK/sandbox-pause" .)
    install_from "$WORK" sandbox-pause
    done_step
  fi
}

# Lane 2: Pulumi (CLI, language host, providers and their plugin installs).
lane_pulumi() {
  # ---------------------------------------------------------------- 4. pulumi CLI
  if have pulumi; then
    echo "[4/$TOTAL] pulumi $PULUMI_VERSION: already built"
  else
    step 4 "building pulumi $PULUMI_VERSION ..."
    w="$WORK/pulumi"
    new_wrapper "$w" k8s-demo.sandbox/pulumi
    pulumi_mod_edit "$w"
    (
      cd "$w"
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
  plugin_listed() { # plugin_listed NAME VERSION
    "$BIN/pulumi" plugin ls 2>/dev/null | awk '$1 == n && $2 == "resource" && $3 == v { f = 1 } END { exit !f }' n="$1" v="$2"
  }
  if plugin_listed kubernetes "$PULUMI_KUBERNETES_VERSION"; then
    echo "[7/$TOTAL] kubernetes plugin $PULUMI_KUBERNETES_VERSION: already installed in $PULUMI_HOME"
  else
    step 7 "installing kubernetes plugin $PULUMI_KUBERNETES_VERSION into $PULUMI_HOME ..."
    "$BIN/pulumi" plugin install resource kubernetes "$PULUMI_KUBERNETES_VERSION" --file "$BIN/$PROVIDER"
    plugin_listed kubernetes "$PULUMI_KUBERNETES_VERSION" || die "pulumi plugin ls does not list kubernetes $PULUMI_KUBERNETES_VERSION"
    done_step
  fi

  # ---------------------------------------------------------------- 8. Python language host
  # Not a module the proxy serves on its own (its go.mod replaces pkg and sdk
  # with ../.. paths): build its one main.go, from the pinned pulumi/pulumi
  # commit, in a wrapper module against the pkg/v3 and sdk/v3 modules at
  # $PULUMI_VERSION, as the CLI is.  The exec shim is a Python script that
  # must sit beside it.
  LANGHOST=pulumi-language-python
  if have "$LANGHOST" "$LANGHOST-exec"; then
    echo "[8/$TOTAL] $LANGHOST $PULUMI_VERSION (pulumi/pulumi ${PULUMI_LANGUAGE_PYTHON_COMMIT:0:12}): already built"
  else
    step 8 "building $LANGHOST $PULUMI_VERSION from pulumi/pulumi ${PULUMI_LANGUAGE_PYTHON_COMMIT:0:12} ..."
    gd="$(git_source K8S_DEMO_PULUMI_GIT https://github.com/pulumi/pulumi.git "$PULUMI_LANGUAGE_PYTHON_COMMIT")"
    w="$WORK/$LANGHOST"
    new_wrapper "$w" k8s-demo.sandbox/$LANGHOST
    git_extract "$gd" "$PULUMI_LANGUAGE_PYTHON_COMMIT" "$w/src" \
      "sdk/python/cmd/$LANGHOST/main.go" "sdk/python/cmd/$LANGHOST-exec"
    mv "$w/src/sdk/python/cmd/$LANGHOST/main.go" "$w/main.go"
    pulumi_mod_edit "$w"
    (
      cd "$w"
      "$GO" build -mod=mod -p "$JOBS" \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
        -o "out/$LANGHOST" .
    )
    install -m 755 "$w/src/sdk/python/cmd/$LANGHOST-exec" "$w/out/$LANGHOST-exec"
    install_from "$w/out" "$LANGHOST" "$LANGHOST-exec"
    done_step
  fi
  [ "$("$BIN/$LANGHOST" --version)" = "$PULUMI_VERSION" ] || die "$LANGHOST --version is not $PULUMI_VERSION"

  # ---------------------------------------------------------------- 9+10. docker provider
  # pulumi-docker is not served by the module proxy either: build release
  # $PULUMI_DOCKER_VERSION from its commit as its Makefile does (`make
  # upstream`, `schema_embed`, `provider`): the upstream submodule (the
  # terraform provider at the commit the release records) with the release's
  # patches applied, then the embedded schema, then the provider binary.
  DPROVIDER=pulumi-resource-docker
  DPMOD=github.com/pulumi/pulumi-docker/provider/v5
  if have "$DPROVIDER"; then
    echo "[9/$TOTAL] $DPROVIDER $PULUMI_DOCKER_VERSION: sources already prepared"
    echo "[10/$TOTAL] $DPROVIDER $PULUMI_DOCKER_VERSION: already built"
  else
    step 9 "preparing $DPROVIDER $PULUMI_DOCKER_VERSION sources (pulumi-docker ${PULUMI_DOCKER_COMMIT:0:12}, upstream ${TF_DOCKER_COMMIT:0:12}) and embedded schema ..."
    pd="$(git_source K8S_DEMO_PULUMI_DOCKER_GIT https://github.com/pulumi/pulumi-docker.git "$PULUMI_DOCKER_COMMIT")"
    sub="$(git --git-dir="$pd" rev-parse "$PULUMI_DOCKER_COMMIT:upstream")" || die "pulumi-docker $PULUMI_DOCKER_COMMIT has no upstream submodule"
    [ "$sub" = "$TF_DOCKER_COMMIT" ] ||
      die "pulumi-docker $PULUMI_DOCKER_COMMIT records upstream at $sub, versions.env says TF_DOCKER_COMMIT=$TF_DOCKER_COMMIT"
    tf="$(git_source K8S_DEMO_TF_DOCKER_GIT https://github.com/kreuzwerker/terraform-provider-docker.git "$TF_DOCKER_COMMIT")"
    w="$WORK/pulumi-docker"
    rm -rf "$w"
    git_extract "$pd" "$PULUMI_DOCKER_COMMIT" "$w" provider patches
    git_extract "$tf" "$TF_DOCKER_COMMIT" "$w/upstream"
    (
      cd "$w/upstream"
      # Plain `git apply` on the extracted tree, in patch order, as
      # scripts/upstream.sh does; the ceiling keeps git from taking any
      # repository above the cache for ours.
      for patch in ../patches/*.patch; do
        GIT_CEILING_DIRECTORIES="$w" git apply "$patch" || die "patch $(basename "$patch") does not apply"
      done
    )
    (
      cd "$w/provider/cmd/$DPROVIDER"
      VERSION="$PULUMI_DOCKER_VERSION" "$GO" run ./generate.go
      [ -s schema-embed.json ]
    ) || die "generating $DPROVIDER's schema-embed.json failed"
    done_step
    step 10 "building $DPROVIDER $PULUMI_DOCKER_VERSION ..."
    (
      cd "$w/provider"
      "$GO" build -p "$JOBS" -tags no_compose \
        -ldflags "-s -w -X $DPMOD/pkg/version.Version=$PULUMI_DOCKER_VERSION" \
        -o out/ "./cmd/$DPROVIDER"
    )
    install_from "$w/provider/out" "$DPROVIDER"
    done_step
  fi
  # The embedded schema carries the version (the -X value cannot be read back:
  # with -trimpath, go leaves -ldflags out of the binary's build info).
  grep -aqF "{\"name\":\"docker\",\"version\":\"$PULUMI_DOCKER_VERSION\"," "$BIN/$DPROVIDER" ||
    die "$DPROVIDER does not embed the schema of version $PULUMI_DOCKER_VERSION"

  # ---------------------------------------------------------------- 11. docker plugin install
  if plugin_listed docker "$PULUMI_DOCKER_VERSION"; then
    echo "[11/$TOTAL] docker plugin $PULUMI_DOCKER_VERSION: already installed in $PULUMI_HOME"
  else
    step 11 "installing docker plugin $PULUMI_DOCKER_VERSION into $PULUMI_HOME ..."
    "$BIN/pulumi" plugin install resource docker "$PULUMI_DOCKER_VERSION" --file "$BIN/$DPROVIDER"
    plugin_listed docker "$PULUMI_DOCKER_VERSION" || die "pulumi plugin ls does not list docker $PULUMI_DOCKER_VERSION"
    done_step
  fi
}

if [ "${SANDBOX_BUILD_LANES:-2}" = 1 ]; then
  lane_cluster
  lane_pulumi
else
  lane_cluster &
  cluster_pid=$!
  lane_pulumi &
  pulumi_pid=$!
  rc=0
  wait "$cluster_pid" || rc=$?
  wait "$pulumi_pid" || rc=$?
  [ "$rc" = 0 ] || die "a build lane failed (exit $rc): see the step that stopped above"
fi

touch "$CACHE/.complete"
echo "build-tools: all tools ready in $BIN ($((SECONDS - start_all))s)"
# act, the runner of `make workflows`: a cache dir of its own, outside this key (build-act.sh).
echo "build-tools: act ready at $("$here/build-act.sh")"
