#!/usr/bin/env bash
# run.sh — the Docker end-to-end suite, from a bare Debian machine or a warm
# one: starts an engine if none answers (engine.sh), installs the two tools
# the tests use (busybox-static for the shell image, docker-compose for the
# demo), builds the offline builder image (docker/make-builder-image.sh,
# a no-op when go.mod is unchanged), then runs the Go tests tagged
# e2e_docker. Image builds are cached by the engine, so a second run only
# re-runs the tests.
#
# Last line: "N passed, N failed" (top-level tests). Exit status: go test's.
# Extra arguments go to go test, e.g. e2e/docker/run.sh -run TestSwap
set -uo pipefail
cd "$(dirname "$0")/../.."
STATE=${E2E_DOCKER_STATE:-/var/tmp/entrypoint-e2e-docker}
mkdir -p "$STATE"

fail_setup() { echo "e2e/docker: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

e2e/docker/engine.sh || fail_setup "no Docker engine (see $STATE/dockerd.log)"

need=""
grep -q 'ok installed' <<<"$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" || need="$need busybox-static"
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need="$need docker-compose"
if [ -n "$need" ]; then
  echo "e2e/docker: apt-get install$need" >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $need \
    >"$STATE/apt-tools.log" 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $need \
      >"$STATE/apt-tools.log" 2>&1
  } || fail_setup "apt-get install$need failed (see $STATE/apt-tools.log)"
fi

# Leftovers of an interrupted run (only what this suite labelled).
ids=$(docker ps -aq --filter label=io.entrypoint.e2e=1)
[ -n "$ids" ] && docker rm -f -v $ids >/dev/null 2>&1

GO_IMAGE=$(docker/make-builder-image.sh | tail -1) || fail_setup "docker/make-builder-image.sh failed"
VERSION=$(git describe --always --dirty 2>/dev/null || echo e2e)

log=$STATE/go-test.log
E2E_GO_IMAGE=$GO_IMAGE E2E_VERSION=$VERSION \
  go test -tags e2e_docker -count=1 -v -timeout 25m ./e2e/docker/ "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# Old images of earlier builds of this suite (dangling after a rebuild).
docker image prune -f --filter label=io.entrypoint.e2e=1 >/dev/null 2>&1

passed=$(grep -cE '^--- PASS' "$log")
failed=$(grep -cE '^--- FAIL' "$log")
skipped=$(grep -cE '^--- SKIP' "$log")
# A build failure or a TestMain exit has no --- FAIL line of its own.
[ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
# A skip fails the suite unless scripts/skip-allowlist.txt names it, as in
# scripts/test.sh: a runner without the tools must not pass by skipping.
for t in $(sed -n 's/^ *--- SKIP: \([^ ]*\).*/\1/p' "$log"); do
  if grep -qE "^e2e/docker[[:space:]]+${t//\//\\/}[[:space:]]" scripts/skip-allowlist.txt; then
    echo "skip allowed: $t"
  else
    echo "e2e/docker: $t skipped and not in scripts/skip-allowlist.txt" >&2
    failed=$((failed + 1))
    [ "$rc" -eq 0 ] && rc=1
  fi
done
echo "$passed passed, $failed failed, $skipped skipped"
exit "$rc"
