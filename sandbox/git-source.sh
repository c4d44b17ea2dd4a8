# shellcheck shell=bash
# Sourced by build-tools.sh and get-action.sh: the one way the sandbox takes a git source (nothing fetched
# is committed). Needs GIT_ROOT (where fetched commits are kept) and die().
# git_source VAR URL COMMIT: print a git dir that has COMMIT of the repository
# at URL.  $VAR (default URL) is a local git dir, read in place, or a URL, of
# which only COMMIT is fetched into $GIT_ROOT.  Stops, naming all three, when
# the commit cannot be had.
git_source() {
  local var="$1" url="$2" commit="$3" loc gd
  : "${GIT_ROOT:?git_source needs GIT_ROOT, set by the script that sources git-source.sh}"
  loc="${!var:-$url}"
  if [ -d "$loc" ]; then
    gd="$(git -C "$loc" rev-parse --absolute-git-dir 2>/dev/null || echo "$loc")"
  else
    # owner+repo: two repositories of one name never share a git dir.
    gd="$GIT_ROOT/$(basename "$(dirname "$url")")+$(basename "${url%.git}").git"
    if ! git --git-dir="$gd" cat-file -e "$commit^{commit}" 2>/dev/null; then
      echo "fetching $commit from $loc ..." >&2
      [ -d "$gd" ] || git init -q --bare "$gd"
      git --git-dir="$gd" fetch -q --depth 1 "$loc" "$commit" >&2 || true
    fi
  fi
  git --git-dir="$gd" cat-file -e "$commit^{commit}" 2>/dev/null ||
    die "commit $commit of $url is not available from $var=$loc.
  Set $var to a git URL that serves it, or to a local clone or mirror that has it
  (e.g. git clone --mirror $url DIR; $var=DIR)."
  echo "$gd"
}
