# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Sourced by docker-up.sh, docker-down.sh, base-images.sh and env.sh: where the
# sandbox's own Docker engine (dockerd + containerd) of cluster $SANDBOX_NAME
# lives.  Uses $CACHE (the output of tools-path.sh) when set.
#
# Everything is in one directory, so that the engine never shares a socket,
# pid file, state dir, bridge or cgroup with any other Docker engine:
#   SANDBOX_DOCKER_DIR  default $KWOK_WORKDIR/docker/<name>

# shellcheck source=host-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/host-common.sh"
CACHE="${CACHE:-$("$(dirname "${BASH_SOURCE[0]}")/tools-path.sh")}"
SANDBOX_NAME="${SANDBOX_NAME:-k8s-demo}"
export KWOK_WORKDIR="${KWOK_WORKDIR:-$CACHE/kwok}"
DOCKER_DIR="${SANDBOX_DOCKER_DIR:-$KWOK_WORKDIR/docker/$SANDBOX_NAME}"
DOCKER_SOCK="$DOCKER_DIR/docker.sock"
DOCKER_PIDFILE="$DOCKER_DIR/docker.pid"
CONTAINERD_SOCK="$DOCKER_DIR/containerd.sock"
CONTAINERD_PIDFILE="$DOCKER_DIR/containerd.pid"
# Bridge name and subnet chosen by docker-up.sh, read back by docker-down.sh.
BRIDGE_ENV="$DOCKER_DIR/bridge.env"
# Linux interface names are at most 15 characters: name the bridge after a
# hash of the directory, so two sandboxes never pick the same one.
DOCKER_BRIDGE="k8sd-$(printf '%s' "$DOCKER_DIR" | sha256sum | cut -c1-8)"
# A cgroup parent of our own (cgroupfs driver), not Docker's default /docker.
DOCKER_CGROUP_PARENT="/k8s-demo-sandbox-$DOCKER_BRIDGE"
# Debian's client matches Debian's dockerd (API 1.41); newer clients negotiate down.
DOCKER_CLI="${SANDBOX_DOCKER_CLI:-/usr/bin/docker}"

# sandbox_docker ARGS...: the docker client, always pointed at our socket.
sandbox_docker() { DOCKER_HOST="unix://$DOCKER_SOCK" "$DOCKER_CLI" "$@"; }

# our_pid PIDFILE: print the pid in PIDFILE if that process is alive and was
# started with a path under $DOCKER_DIR (so a reused pid of some other
# process is never taken for ours).
our_pid() { pid_from "$1" "$DOCKER_DIR/"; }
