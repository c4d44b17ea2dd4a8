#!/usr/bin/env bash
# Put one third-party GitHub action, at the commit the workflows pin, into the cache root and
# print its directory, <cache root>/actions/<owner>+<repo>@<commit>: what act runs in place of
# `uses: <owner>/<repo>@<commit>` (--local-repository), so `make workflows` downloads no action.
#   sandbox/get-action.sh actions/setup-python 5fda3b95a4ea91299a34e894583c3862153e4b97
# Nothing here is committed to the project. A second run only prints the directory.
#
# The source is git, as for the sandbox tools' git sources (build-tools.sh):
# K8S_DEMO_<OWNER>_<REPO>_GIT (upper case, other characters as _, e.g. K8S_DEMO_ACTIONS_SETUP_PYTHON_GIT,
# K8S_DEMO_PULUMI_ACTIONS_GIT) names a local clone or mirror, read in place, or a git URL, of which
# only that commit is fetched into <cache root>/git/; the default is https://github.com/<owner>/<repo>.git.
#
# A JavaScript action runs the bundle committed in its dist/. When the source lacks a file of the
# commit (a partial mirror can leave out large blobs, such as dist/index.js), the action is built
# from that commit's own source and lock file, as its release process does (`yarn run build` or
# `npm run build`, packages from the npm registry), and BUILT-FROM-SOURCE in the directory lists
# the files the mirror lacked.
# Environment: K8S_DEMO_SANDBOX_CACHE (cache root), as build-act.sh.
set -euo pipefail

die() { echo "get-action: ERROR: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 <owner>/<repo> <40-hex commit>"
repo="$1" commit="$2"
[[ "$repo" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || die "'$repo' is not <owner>/<repo>"
[[ "$commit" =~ ^[0-9a-f]{40}$ ]] || die "'$commit' is not a 40-hex commit"
# The yarn of a yarn.lock v1 project, run through npx from the npm registry.
YARN_VERSION=1.22.22

root="${K8S_DEMO_SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-demo/sandbox-tools}"
name="${repo/\//+}"
dir="$root/actions/$name@$commit"
if [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi

mkdir -p "$root/actions"
exec 9>"$root/actions/.lock"
flock 9
if [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi

var="K8S_DEMO_$(printf '%s' "${repo/\//_}" | tr '[:lower:]' '[:upper:]' | tr -c 'A-Z0-9\n' '_')_GIT"
GIT_ROOT="$root/git"
# shellcheck source=git-source.sh
. "$(dirname "${BASH_SOURCE[0]}")/git-source.sh"
gd="$(git_source "$var" "https://github.com/$repo.git" "$commit")"

echo "get-action: $repo@$commit into $dir ..." >&2
tmp="$dir.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
# Files of the commit whose content the source lacks: left out of the extraction, rebuilt below.
missing="$(git --git-dir="$gd" ls-tree -r --format='%(objectname) %(path)' "$commit" |
  while read -r oid path; do git --git-dir="$gd" cat-file -e "$oid" 2>/dev/null || echo "$path"; done)"
excludes=()
while IFS= read -r path; do
  [ -n "$path" ] && excludes+=(":(exclude)$path")
done <<<"$missing"
git --git-dir="$gd" archive --format=tar "$commit" -- . "${excludes[@]}" | tar -x -C "$tmp" ||
  die "cannot extract $commit from $gd"

if [ -n "$missing" ]; then
  echo "get-action: the source lacks $(echo "$missing" | wc -l) file(s) of $commit; building the action from its source:" >&2
  while IFS= read -r path; do echo "  $path"; done <<<"$missing" >&2
  command -v npx >/dev/null || die "npx (npm) is needed to build $repo from its source: apt-get install npm"
  (
    cd "$tmp"
    grep -q '"build"' package.json || die "$repo has no build script in package.json: cannot rebuild $missing"
    if [ -f yarn.lock ]; then
      # Scripts of the dependencies are not run (husky's git hooks, for one); the build runs the project's own.
      npx --yes "yarn@$YARN_VERSION" install --frozen-lockfile --ignore-scripts --non-interactive >&2
      npx --yes "yarn@$YARN_VERSION" run build >&2
    elif [ -f package-lock.json ]; then
      npm ci --ignore-scripts --no-audit --no-fund >&2
      npm run build >&2
    else
      die "$repo has neither yarn.lock nor package-lock.json: its build cannot be pinned"
    fi
    rm -rf node_modules
  ) || die "building $repo@$commit from its source failed (output above)"
  while IFS= read -r path; do
    [ -f "$tmp/$path" ] || die "the build of $repo@$commit did not produce $path"
  done <<<"$missing"
  echo "$missing" >"$tmp/BUILT-FROM-SOURCE"
fi

# What act runs: the files action.yml names (runs.main, pre, post).
[ -f "$tmp/action.yml" ] || [ -f "$tmp/action.yaml" ] || die "$repo@$commit has no action.yml"
while read -r entry; do
  [ -f "$tmp/$entry" ] || die "$repo@$commit: action.yml runs $entry, which is missing"
done < <(sed -nE "s/^[[:space:]]+(main|pre|post):[[:space:]]*['\"]?([^'\"[:space:]]+)['\"]?.*/\2/p" "$tmp"/action.y*ml)
touch "$tmp/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
echo "$dir"
