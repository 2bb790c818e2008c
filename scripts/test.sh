#!/usr/bin/env bash
# The test command of the README: formatting, vet, staticcheck, and every
# Go test with the race detector, including the PID-1 suites (e2e/pid1 runs
# the real binary as PID 1 under unshare, which needs root) and the
# browser test of the admin page (headless Chromium).
#
# It installs what it needs on a fresh Debian machine: util-linux (unshare),
# chromium, systemd (its systemd-notify drives one readiness test), the
# servers the bind takeover is tested with (nginx, nodejs, python3; ss from
# iproute2), binutils (the native exec shim's assembler), the recipes'
# servers (haproxy, lighttpd, gunicorn, uwsgi with its python3 plugin,
# python3-uvicorn), staticcheck and helm (the chart's template tests; both
# through the Go module proxy).
#
# A skipped test fails the run unless scripts/skip-allowlist.txt names it
# with a reason (internal/skipcheck reads go test -json): a runner without
# root or a tool must not turn the PID-1 suites into "ok". The skips are
# listed at the end.
#
#   scripts/test.sh            # everything
#   scripts/test.sh ./init/... # go test arguments instead of ./...
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2
export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH)/bin"

need=""
command -v unshare >/dev/null || need="$need util-linux"
command -v chromium >/dev/null || need="$need chromium"
command -v systemd-notify >/dev/null || need="$need systemd"
command -v nginx >/dev/null || need="$need nginx"
# The recipes' servers (e2e/recipes), all from the Debian archive.
command -v haproxy >/dev/null || need="$need haproxy"
command -v lighttpd >/dev/null || need="$need lighttpd"
command -v gunicorn >/dev/null || need="$need gunicorn"
command -v uwsgi >/dev/null || need="$need uwsgi"
[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || need="$need uwsgi-plugin-python3"
/usr/bin/python3 -c 'import uvicorn' 2>/dev/null || need="$need python3-uvicorn"
command -v node >/dev/null || need="$need nodejs"
command -v python3 >/dev/null || need="$need python3"
command -v ss >/dev/null || need="$need iproute2"
# GNU as and objcopy: internal/execshim's test assembles the native shim's
# source and compares it with the bytes the binary carries.
{ command -v as && command -v objcopy; } >/dev/null || need="$need binutils"
if [ -n "$need" ] && [ "$(id -u)" = 0 ]; then
  echo "== apt-get install$need"
  export DEBIAN_FRONTEND=noninteractive
  # nginx's, haproxy's and lighttpd's packages start a daemon on install
  # unless policy-rc.d says no.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt_ok=1
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $need >/tmp/entrypoint-apt.log 2>&1 || {
    apt-get -o DPkg::Lock::Timeout=300 update -qq >>/tmp/entrypoint-apt.log 2>&1
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $need >>/tmp/entrypoint-apt.log 2>&1
  } || apt_ok=""
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
  [ -n "$apt_ok" ] || { echo "apt-get install$need failed; see /tmp/entrypoint-apt.log" >&2; exit 1; }
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "== go vet"
go vet ./...
go vet -tags e2e_docker ./e2e/docker/
# health, control and status read the supervisor only through package
# status and must build off Linux (issue 14); status imports only the
# standard library (its TestImportsOnlyStdlib). cmd/entrypoint builds
# there as a stub whose init says it needs Linux, so that its portable
# subcommands (validate, probe, the control client) keep building. With
# several packages go build writes no binary into the tree.
GOOS=darwin go build ./status/... ./health/... ./control/... ./cmd/entrypoint

echo "== staticcheck $STATICCHECK_VERSION"
if ! command -v staticcheck >/dev/null || ! grep -q "${STATICCHECK_VERSION#v}" <<<"$(staticcheck -version 2>/dev/null)"; then
  go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
staticcheck ./...
staticcheck -tags e2e_docker ./e2e/docker/

HELM_VERSION=${HELM_VERSION:-v3.22.0}
if ! command -v helm >/dev/null && [ -z "${HELM:-}" ]; then
  echo "== go install helm $HELM_VERSION (the chart tests render templates with it)"
  go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi

echo "== go test -race"
if [ "$#" -eq 0 ]; then
  set -- ./...
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/skipcheck" ./internal/skipcheck
# skipcheck prints what plain go test would (ok/FAIL lines, failed tests'
# output), then the skips; the exit status is go test's, or 1 for a skip
# the allow-list does not name.
set +e
go test -json -race -count=1 -timeout 20m "$@" | "$tmp/skipcheck" -allow scripts/skip-allowlist.txt
status=("${PIPESTATUS[@]}")
set -e
if [ "${status[0]}" -ne 0 ]; then
  exit "${status[0]}"
fi
exit "${status[1]}"
