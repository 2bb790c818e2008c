#!/usr/bin/env bash
# engine.sh — make sure a Docker engine answers, starting one if needed.
#
# Uses whatever engine `docker info` reaches. Otherwise installs Debian's
# docker.io (dockerd 20.10 + containerd + runc) and starts dockerd in the
# background, detached from this shell, logging to $STATE/dockerd.log.
#
# Chosen to coexist with other users of this machine (a local Kubernetes
# runs its own containerd with its own socket and root; dockerd starts its
# own managed containerd under /var/run/docker/containerd):
#   --iptables=false --ip-masq=false --ip-forward=false
#       dockerd adds no iptables rules and changes no sysctl, so it cannot
#       disturb kube-proxy's rules or the FORWARD policy. Published ports
#       still work through docker-proxy (the userland proxy), which is all
#       the e2e suite and the demo need: every port is on 127.0.0.1.
#   --storage-driver overlay2, falling back to vfs when the root file
#       system cannot carry overlayfs upper dirs.
# Idempotent: a running engine is reused; a dockerd this script started
# and that is still alive is waited for, not started twice.
set -euo pipefail

STATE=${E2E_DOCKER_STATE:-/var/tmp/entrypoint-e2e-docker}
mkdir -p "$STATE"
log() { printf 'engine: %s\n' "$*" >&2; }

answers() { docker info >/dev/null 2>&1; }

wait_engine() {
  for _ in $(seq 1 120); do
    answers && return 0
    [ -n "${1:-}" ] && ! kill -0 "$1" 2>/dev/null && return 1
    sleep 0.5
  done
  return 1
}

if answers; then
  exit 0
fi

if ! command -v dockerd >/dev/null; then
  log "no dockerd: apt-get install docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends docker.io >"$STATE/apt.log" 2>&1 ||
    { tail -20 "$STATE/apt.log" >&2; log "apt-get install docker.io failed"; exit 1; }
fi
command -v docker >/dev/null || { log "no docker client on PATH"; exit 1; }

if [ -f "$STATE/dockerd.pid" ] && kill -0 "$(cat "$STATE/dockerd.pid")" 2>/dev/null; then
  log "dockerd $(cat "$STATE/dockerd.pid") is starting; waiting"
  wait_engine "$(cat "$STATE/dockerd.pid")" && exit 0
fi

start() {
  log "starting dockerd --storage-driver $1 (log: $STATE/dockerd.log)"
  # setsid: the engine outlives this script and its process group.
  setsid dockerd --iptables=false --ip-masq=false --ip-forward=false \
    --storage-driver "$1" >>"$STATE/dockerd.log" 2>&1 </dev/null &
  echo $! >"$STATE/dockerd.pid"
  wait_engine $!
}

start overlay2 || {
  pid=$(cat "$STATE/dockerd.pid")
  kill "$pid" 2>/dev/null || true
  tail -5 "$STATE/dockerd.log" >&2
  log "overlay2 failed; trying vfs (slower, more disk)"
  start vfs
} || { tail -20 "$STATE/dockerd.log" >&2; log "dockerd did not come up"; exit 1; }
log "engine $(docker info --format '{{.ServerVersion}} {{.Driver}} cgroup v{{.CgroupVersion}}')"
