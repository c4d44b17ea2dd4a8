#!/usr/bin/env bash
# Print the per-user cache directory that holds the sandbox tools built for the
# versions pinned in sandbox/versions.env.  The directory is keyed by a short
# hash of those versions, so bumping a version selects a fresh directory.
#   [ -f "$(sandbox/sandbox.sh tools-path)/.complete" ]   # are the tools built?
# Override the cache root with K8S_DEMO_SANDBOX_CACHE.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$here/versions.env"
root="${K8S_DEMO_SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-demo/sandbox-tools}"
key="$(printf '%s\n' \
  "kubernetes=$KUBERNETES_VERSION" \
  "etcd=$ETCD_VERSION" \
  "kwok=$KWOK_VERSION" \
  "pulumi=$PULUMI_VERSION" \
  "pulumi-kubernetes=$PULUMI_KUBERNETES_VERSION@$PULUMI_KUBERNETES_MODULE_VERSION" \
  "pulumi-language-python=$PULUMI_LANGUAGE_PYTHON_COMMIT" \
  "pulumi-docker=$PULUMI_DOCKER_VERSION@$PULUMI_DOCKER_COMMIT+$TF_DOCKER_COMMIT" \
  "distribution=$DISTRIBUTION_VERSION" \
  "cri-dockerd=$CRI_DOCKERD_VERSION" \
  "recipe=$SANDBOX_TOOLS_RECIPE" | sha256sum | cut -c1-12)"
printf '%s/%s\n' "$root" "$key"
