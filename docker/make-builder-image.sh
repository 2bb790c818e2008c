#!/usr/bin/env bash
# make-builder-image.sh — assemble the Dockerfile's builder image from what is
# already on this machine, for engines that cannot pull from a registry.
#
# The image holds:
#   /usr/local/go       the host's Go toolchain (GOTOOLCHAIN=local)
#   /go/pkg/mod/cache   a module cache pre-filled for this go.mod/go.sum
#                       (GOPROXY=off inside, so nothing is fetched at build time)
#   /bin/busybox + sh, ln, mkdir, ...   the few tools the Dockerfile's RUN lines use
#   /root/.cache/go-build   the standard library and the modules, compiled
#
# and is tagged
#   entrypoint-builder:<key>   key = hash of go.mod, go.sum and the Go version
#   entrypoint-builder:latest
#   golang:1.26 (the Dockerfile's default GO_IMAGE), unless an image by that
#               name exists that this script did not make (use --force to
#               replace it), so that a plain `docker build .` works offline.
#
# Idempotent: exits at once when entrypoint-builder:<key> exists.
# Prints the image reference on its last line (run.sh passes it as GO_IMAGE).
#
# Needs: docker, go, busybox-static (apt-get install busybox-static); the
# module download goes through the host's module cache first, then GOPROXY.
set -euo pipefail

force=0
[ "${1:-}" = --force ] && force=1

root=$(cd "$(dirname "$0")/.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
GOROOT_HOST=$("$GO" env GOROOT)
goversion=$("$GO" env GOVERSION)               # go1.26.8
alias_tag=${GO_IMAGE_ALIAS:-golang:1.26}
busybox=${BUSYBOX:-/bin/busybox}
# The script itself is part of the key: a change here rebuilds the image.
key=$(cat "$root/go.mod" "$root/go.sum" "$0" | sha256sum | cut -c1-12)
image=entrypoint-builder:${goversion#go}-$key
label=io.entrypoint.builder.key

log() { printf 'make-builder-image: %s\n' "$*" >&2; }

if docker image inspect "$image" >/dev/null 2>&1; then
  log "$image is present"
else
  [ -x "$busybox" ] || { log "need a static busybox at $busybox: apt-get install busybox-static"; exit 1; }
  # A dynamic busybox would need a libc the image does not have; its ELF
  # interpreter path sits in the first bytes of the file.
  if head -c 1024 "$busybox" | LC_ALL=C grep -aq 'ld-linux'; then
    log "$busybox is dynamically linked; install Debian's busybox-static"; exit 1
  fi

  stage=$(mktemp -d /tmp/entrypoint-builder.XXXXXX)
  trap 'chmod -R u+w "$stage" 2>/dev/null; rm -rf "$stage"' EXIT
  mkdir -p "$stage/bin" "$stage/tmp" "$stage/src" "$stage/go/pkg/mod" "$stage/root"
  chmod 1777 "$stage/tmp"
  cp "$busybox" "$stage/bin/busybox"
  for a in sh ash ln mkdir cp mv rm ls cat env chmod chown true false test \
           echo printf grep sed find tar wc head tail du stat id readlink sleep; do
    ln -s busybox "$stage/bin/$a"
  done

  # Fill the module cache for exactly this go.mod; keep only cache/download
  # (zips, go.mod files, hashes): the go command extracts what it builds.
  hostcache=$("$GO" env GOMODCACHE)/cache/download
  log "filling the module cache for go.mod ($key)"
  (cd "$root" && GOMODCACHE="$stage/gomod" GOFLAGS=-modcacherw \
     GOPROXY="file://$hostcache,$("$GO" env GOPROXY)" "$GO" mod download)
  mkdir -p "$stage/go/pkg/mod/cache"
  mv "$stage/gomod/cache/download" "$stage/go/pkg/mod/cache/download"
  rm -rf "$stage/gomod"

  # One tar stream, no build context: the toolchain is 250+ MB.
  log "importing $image (toolchain from $GOROOT_HOST)"
  gr=${GOROOT_HOST#/}
  tar -c --exclude="$gr/test" --exclude="$gr/doc" --transform "s|^$gr|usr/local/go|" \
      -C "$stage" bin tmp src go root -C / "$gr" |
    docker import \
      --change 'ENV PATH=/go/bin:/usr/local/go/bin:/bin' \
      --change 'ENV GOPATH=/go' \
      --change 'ENV GOTOOLCHAIN=local' \
      --change 'ENV GOPROXY=off' \
      --change 'ENV GOFLAGS=-mod=readonly' \
      --change 'ENV CGO_ENABLED=0' \
      --change 'ENV GOCACHE=/root/.cache/go-build' \
      --change 'WORKDIR /src' \
      --change 'CMD ["/bin/sh"]' \
      - "$image.tmp" >/dev/null
  # docker import cannot set labels, so one build step adds them; it also
  # compiles the standard library and the modules once (best effort: a
  # package that does not compile right now only stays cold), so that the
  # Dockerfile's build only compiles this repository's packages.
  printf '%s\n' "FROM $image.tmp" "COPY . /warm" \
    "RUN cd /warm && (go build -trimpath ./... || true) && rm -rf /warm" |
    docker build -q -f - --label "$label=$key" --label "io.entrypoint.builder.go=$goversion" \
      -t "$image" "$root" >/dev/null 2>"$stage/build.log" || { cat "$stage/build.log" >&2; exit 1; }
  docker rmi "$image.tmp" >/dev/null
fi

docker tag "$image" entrypoint-builder:latest
existing=$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$alias_tag" 2>/dev/null || echo absent)
if [ "$existing" = absent ] || [ -n "$existing" ] || [ $force = 1 ]; then
  docker tag "$image" "$alias_tag"
else
  log "$alias_tag exists and was not made here; leaving it (use --force, or --build-arg GO_IMAGE=$image)"
fi
# Earlier builder images of this script (another go.mod) are 400 MB each.
docker images --filter "label=$label" --format '{{.Repository}}:{{.Tag}}' |
  grep '^entrypoint-builder:' | grep -vx -e "$image" -e entrypoint-builder:latest |
  xargs -r docker rmi >/dev/null 2>&1 || true
echo "$image"
