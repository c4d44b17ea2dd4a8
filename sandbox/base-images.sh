#!/usr/bin/env bash
# Give the sandbox's Docker engine (docker-up.sh) the two base images that
# app/Dockerfile names, under exactly those names:
#   alpine:3.22.2                                  (stage 1: a shell, tr, sed)
#   nginxinc/nginx-unprivileged:1.29.3-alpine3.22  (stage 2: nginx as non-root on 8080)
# Nothing can be pulled here, so both are local stand-ins made from Debian
# packages (busybox-static; nginx 1.22 and its libraries), extracted with
# `dpkg -x` and `docker import`ed.  They behave as the Dockerfile expects
# (paths, user, port, CMD, wget for the HEALTHCHECK), they are not the
# official images, and their org.opencontainers.image.description says so.
# An image is built only when missing or made by another version of this
# script; an image of that name that is not a stand-in is left alone.
#
# Environment: as docker-up.sh (SANDBOX_NAME, KWOK_WORKDIR, SANDBOX_DOCKER_DIR).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=docker-common.sh
. "$here/docker-common.sh"
WORK="$CACHE/base-images"
DEBS="$WORK/debs"
# The .debs and root filesystems are built in the shared cache: sandboxes started
# side by side (make e2e runs two) build their engines' images one at a time.
mkdir -p "$WORK"
exec 9>"$WORK/.lock"
flock 9

log() { echo "sandbox-base-images: $*" >&2; }
die() { echo "sandbox-base-images: ERROR: $*" >&2; exit 1; }

sandbox_docker version >/dev/null 2>&1 || die "no sandbox Docker engine on $DOCKER_SOCK: run sandbox/docker-up.sh first"

ALPINE=alpine:3.22.2
NGINX=nginxinc/nginx-unprivileged:1.29.3-alpine3.22
STANDIN="sandbox stand-in made from Debian packages by k8s-demo sandbox/base-images.sh, not the official image"
# Rebuild when this recipe changes.
RECIPE="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# wanted IMAGE: true when IMAGE must be (re)built.
wanted() {
  local labels
  labels="$(sandbox_docker image inspect --format \
    '{{index .Config.Labels "org.opencontainers.image.description"}}|{{index .Config.Labels "k8s-demo.sandbox.recipe"}}' "$1" 2>/dev/null)" ||
    return 0
  case "$labels" in
    "$STANDIN|$RECIPE") return 1 ;;
    "$STANDIN|"*) return 0 ;;
    *)
      log "$1 exists and is no stand-in of ours: left as it is"
      return 1
      ;;
  esac
}

# fetch_debs PACKAGE...: the packages' .debs (as the configured apt sources
# serve them) into $DEBS; prints their paths.
fetch_debs() {
  local p f
  mkdir -p "$DEBS"
  for p in "$@"; do
    f="$(find "$DEBS" -maxdepth 1 -name "${p}_*.deb" | head -n1)"
    if [ -z "$f" ]; then
      (cd "$DEBS" && apt-get download -qq "$p" 2>/dev/null) ||
        { apt-get update -qq >&2 && (cd "$DEBS" && apt-get download -qq "$p" 2>/dev/null); } ||
        die "apt-get download $p failed"
      f="$(find "$DEBS" -maxdepth 1 -name "${p}_*.deb" | head -n1)"
    fi
    [ -n "$f" ] || die "no .deb for $p in $DEBS"
    echo "$f"
  done
}

# new_rootfs DIR PACKAGE...: DIR with the packages extracted, busybox's applets
# linked (sh, tr, sed, wget, ...), and minimal /etc files.
new_rootfs() {
  local root="$1" deb applet
  shift
  rm -rf "$root"
  mkdir -p "$root"
  while read -r deb; do
    dpkg -x "$deb" "$root"
  done < <(fetch_debs busybox-static "$@")
  while read -r applet; do
    [ -e "$root/$applet" ] || [ -L "$root/$applet" ] || {
      mkdir -p "$root/$(dirname "$applet")"
      ln -s /bin/busybox "$root/$applet"
    }
  done < <("$root/bin/busybox" --list-full)
  mkdir -p "$root/etc" "$root/tmp" "$root/root"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101:nginx:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnginx:x:101:\n' >"$root/etc/group"
  # Documentation and translations only make the image bigger.
  rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/locale" "$root/usr/share/lintian"
}

# import ROOTFS IMAGE CHANGE...: docker import with the stand-in labels.
import() {
  local root="$1" image="$2" c args=()
  shift 2
  for c in "$@" \
    "ENV PATH=$BASE_PATH" \
    "LABEL org.opencontainers.image.description=\"$STANDIN\"" \
    "LABEL k8s-demo.sandbox.recipe=$RECIPE"; do
    args+=(--change "$c")
  done
  tar --numeric-owner -C "$root" -c . | sandbox_docker import "${args[@]}" - "$image" >/dev/null
  rm -rf "$root"
  log "$image: $(sandbox_docker image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.1f MB", $1 / 1e6 }')"
}

# check IMAGE EXPECTED COMMAND...: COMMAND, run in IMAGE as the app's user
# (10101, as app/Dockerfile sets), prints EXPECTED; else the image goes.
check() {
  local image="$1" want="$2" got
  shift 2
  got="$(sandbox_docker run --rm --network none --user 10101:10101 "$image" "$@" 2>&1)" || true
  if [ "$got" != "$want" ]; then
    sandbox_docker image rm "$image" >/dev/null 2>&1 || true
    die "$image stand-in fails its check ($*): $got"
  fi
}

# ------------------------------------------------------------ alpine:3.22.2
if wanted "$ALPINE"; then
  log "building $ALPINE stand-in (busybox-static) ..."
  root="$WORK/alpine-rootfs"
  new_rootfs "$root"
  import "$root" "$ALPINE" 'CMD ["/bin/sh"]'
  # The Dockerfile's first stage needs a shell with tr and sed.
  check "$ALPINE" 'ok-1.0' sh -c 'echo " 1.0 " | tr -d "[:space:]" | sed "s/1/ok-1/"'
else
  log "$ALPINE: present"
fi

# ------------------------------------------------ nginx-unprivileged stand-in
if wanted "$NGINX"; then
  log "building $NGINX stand-in (Debian nginx + busybox-static) ..."
  root="$WORK/nginx-rootfs"
  new_rootfs "$root" nginx nginx-common libc6 libcrypt1 libpcre2-8-0 libssl3 zlib1g
  # No ld.so.cache comes with dpkg -x: build one for the libraries' dirs.
  echo 'include /etc/ld.so.conf.d/*.conf' >"$root/etc/ld.so.conf"
  ldconfig -r "$root"
  # Debian's defaults (sites-enabled, /var/www) are not the official image's.
  rm -rf "$root/etc/nginx/sites-available" "$root/etc/nginx/sites-enabled" "$root/var/www" \
    "$root/etc/init.d" "$root/etc/logrotate.d" "$root/etc/ufw" "$root/lib/systemd" \
    "$root/usr/lib/x86_64-linux-gnu/gconv"
  mkdir -p "$root/etc/nginx/conf.d" "$root/usr/share/nginx/html" "$root/var/log/nginx"
  # As in the official unprivileged image: everything a non-root nginx writes
  # (pid, temp files) is under /tmp, logs go to the container's output, and
  # conf.d/*.conf holds the server (app/nginx.conf replaces default.conf).
  cat >"$root/etc/nginx/nginx.conf" <<'EOF'
# Sandbox stand-in for nginxinc/nginx-unprivileged (Debian's nginx): runs as
# any non-root user, pid and temp files under /tmp.
worker_processes  auto;
error_log  /dev/stderr notice;
pid        /tmp/nginx.pid;

events {
    worker_connections  1024;
}

http {
    client_body_temp_path /tmp/client_temp;
    proxy_temp_path       /tmp/proxy_temp;
    fastcgi_temp_path     /tmp/fastcgi_temp;
    uwsgi_temp_path       /tmp/uwsgi_temp;
    scgi_temp_path        /tmp/scgi_temp;

    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';
    access_log  /dev/stdout  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
EOF
  cat >"$root/etc/nginx/conf.d/default.conf" <<'EOF'
server {
    listen       8080;
    server_name  localhost;
    location / {
        root   /usr/share/nginx/html;
        index  index.html;
    }
}
EOF
  echo '<!DOCTYPE html><title>nginx sandbox stand-in</title><p>nginx (sandbox stand-in from Debian packages)</p>' \
    >"$root/usr/share/nginx/html/index.html"
  import "$root" "$NGINX" \
    'USER 101' \
    'EXPOSE 8080' \
    'CMD ["nginx", "-g", "daemon off;"]'
  # The config loads as the app's user, and the HEALTHCHECK's wget is there.
  check "$NGINX" 'ok' sh -c 'nginx -t -q && command -v wget >/dev/null && echo ok'
else
  log "$NGINX: present"
fi
