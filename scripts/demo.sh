#!/usr/bin/env bash
# The demo of the README: the example app under entrypoint on this machine
# (no Docker needed), narrated. It shows a hot swap that a slow request
# survives, a rollback, a config change picked up from a watched directory,
# the probes and metrics, the CLI, and a clean shutdown.
#
#   scripts/demo.sh            # ports 8080 (app) and 9090 (health) on 127.0.0.1
#   APP_PORT=18080 HEALTH_PORT=19090 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
APP_PORT=${APP_PORT:-8080}
HEALTH_PORT=${HEALTH_PORT:-9090}
work=$(mktemp -d /tmp/entrypoint-demo.XXXXXX)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
get() { curl -fsS --max-time 10 "$@"; }
command -v curl >/dev/null || { echo "the demo needs curl (apt-get install curl)" >&2; exit 1; }

say "build entrypoint and the example app into $work"
go build -o "$work/entrypoint" ./cmd/entrypoint
go build -o "$work/example-app" ./examples/app
mkdir -p "$work/config"
echo "greeting=hello" > "$work/config/app.conf"

say "start: entrypoint --listen 127.0.0.1:$APP_PORT --watch $work/config -- example-app -config .../app.conf"
"$work/entrypoint" --listen "127.0.0.1:$APP_PORT" --health-listen "127.0.0.1:$HEALTH_PORT" \
  --control-socket "$work/control.sock" --watch "$work/config" --watch-debounce 300ms \
  --validate "grep -q greeting= $work/config/app.conf" \
  -- "$work/example-app" -config "$work/config/app.conf" 2>"$work/entrypoint.log" &
init=$!
trap 'kill $init 2>/dev/null; wait $init 2>/dev/null; rm -rf "$work"' EXIT
ctl() { "$work/entrypoint" "$@" --control-socket "$work/control.sock"; }
for _ in $(seq 100); do get -o /dev/null "http://127.0.0.1:$HEALTH_PORT/readyz" 2>/dev/null && break; sleep 0.1; done
get "http://127.0.0.1:$HEALTH_PORT/readyz?verbose"
get "http://127.0.0.1:$APP_PORT/"

say "a 3 s request starts, then kill -USR1 (hot swap)"
get "http://127.0.0.1:$APP_PORT/sleep?d=3s" > "$work/slow" &
slow=$!
sleep 0.5
kill -USR1 $init
sleep 0.5
echo "new requests:  $(get "http://127.0.0.1:$APP_PORT/")"
wait $slow
echo "slow request finished with 200, answered by pid $(cat "$work/slow") (the old generation)"

say "a config change in the watched directory: validate, then swap"
echo "greeting=bonjour" > "$work/config/app.conf.new" && mv "$work/config/app.conf.new" "$work/config/app.conf"
for _ in $(seq 50); do get "http://127.0.0.1:$APP_PORT/" | grep -q bonjour && break; sleep 0.1; done
get "http://127.0.0.1:$APP_PORT/"

say "a config that fails validate: no swap, the old generation keeps serving"
echo "broken" > "$work/config/app.conf.new" && mv "$work/config/app.conf.new" "$work/config/app.conf"
sleep 1.5
get "http://127.0.0.1:$APP_PORT/"

say "entrypoint status"
ctl status

say "entrypoint reload (waits for the outcome)"
echo "greeting=hej" > "$work/config/app.conf"
sleep 1.5
ctl reload

say "a few metrics"
get "http://127.0.0.1:$HEALTH_PORT/metrics" | grep -E '^entrypoint_(reloads_total|generation|app_up|config_changes_total|zombies)' || true

say "SIGTERM: readiness turns false, the app drains, the init exits with the app's code"
kill -TERM $init
wait $init && echo "entrypoint exited with $?"
trap 'rm -rf "$work"' EXIT

say "what entrypoint logged"
cat "$work/entrypoint.log"
