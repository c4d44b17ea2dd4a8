# shellcheck shell=bash
# Sourced by docker-common.sh (so by every script that sources it) and by
# registry.sh: host helpers shared by the sandbox's
# Docker engine and its real node.
#   - install_debian_packages: what the sandbox needs from Debian, installed
#     without starting any service;
#   - pick_subnet: a private IPv4 /24 for a sandbox bridge (the Docker
#     engine's, the real node's pod network) that no route on the host uses,
#     so sandbox traffic never shadows a real network;
#   - pid_from: the pid in a pid file, only if that process is the sandbox's;
#   - terminate: stop one process of the sandbox's, gracefully first.

# install_debian_packages PACKAGE...: apt-get install them (needs root).  A
# package's postinst could start a system-wide service (docker.io starts a
# docker service through invoke-rc.d or systemd): a policy-rc.d that exits 101
# forbids that; it is added only for the install, and only if the machine has
# none of its own.  Prints apt's output on stderr; fails with its exit code.
install_debian_packages() {
  local added_policy="" rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# Temporary, from k8s-demo sandbox: start no services.\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } >&2 || rc=$?
  [ -z "$added_policy" ] || rm -f /usr/sbin/policy-rc.d
  return "$rc"
}

# shellcheck disable=SC2086 # split A.B.C.D on the dots
ip2int() { local IFS=.; set -- $1; echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4)); }
# used_prefixes: every IPv4 destination in any routing table, as A.B.C.D/N
# (the local table lists every address, so addresses are covered too).
used_prefixes() {
  ip -4 route show table all | awk '
    $1 ~ /^(local|broadcast|unicast|multicast|anycast|blackhole|unreachable|prohibit|throw|nat)$/ { $1 = "" ; $0 = $0 }
    $1 != "default" { d = $1; if (d !~ /\//) d = d "/32"; print d }'
}
# overlaps A.B.C.D/N E.F.G.H/M: do the two prefixes share an address?
overlaps() {
  local a b n
  a="$(ip2int "${1%/*}")" b="$(ip2int "${2%/*}")"
  n="${1#*/}"
  [ "${2#*/}" -lt "$n" ] && n="${2#*/}"
  local mask=$(((0xffffffff << (32 - n)) & 0xffffffff))
  [ "$n" = 0 ] && mask=0
  [ $((a & mask)) = $((b & mask)) ]
}
# pick_subnet NAME: a 172.31.X.0/24 that overlaps no route, starting at an
# offset derived from NAME (k8sd-<hex> or k8sn-<hex>, a bridge name) so that
# parallel sandboxes spread out.  Call it holding the subnet lock (see
# subnet_lock) until the bridge with the chosen address exists.
pick_subnet() {
  local start x i cand p used
  used="$(used_prefixes)"
  start=$((16#${1#k8s?-} % 256))
  for ((i = 0; i < 256; i++)); do
    x=$(((start + i) % 256))
    cand="172.31.$x.0/24"
    while read -r p; do
      [ -n "$p" ] || continue
      overlaps "$cand" "$p" && continue 2
    done <<<"$used"
    echo "$cand"
    return 0
  done
  return 1
}


# pid_from PIDFILE TEXT [-x]: print the pid in PIDFILE if that process is
# alive and one argument of its command line contains TEXT (with -x: is
# TEXT), so a reused pid of some other process is never taken for ours.
pid_from() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qF ${3:+"$3"} -- "$2" || return 1
  echo "$pid"
}
# alive PID: is PID a running (not zombie) process?
alive() { [ -d "/proc/$1" ] && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]; }
# terminate PID NAME SECONDS: SIGTERM PID (a process the caller checked is
# its own), wait up to SECONDS for it to exit, then SIGKILL it.  Logs with
# the caller's log function.
terminate() {
  local pid="$1" name="$2" i
  log "stopping $name (pid $pid) ..."
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < $3 * 5; i++)); do
    alive "$pid" || return 0
    sleep 0.2
  done
  log "$name did not stop within $3 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
}
