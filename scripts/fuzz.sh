#!/usr/bin/env bash
# A short run of every Go fuzz target (their seed corpora already run in
# every `go test`). Go fuzzes one target per invocation, so this finds the
# targets and runs each for FUZZTIME (default 5s). A crasher is written to
# the package's testdata/fuzz/<Target>/: commit it with the fix, it then
# runs as a seed forever.
#
#   scripts/fuzz.sh                 # every target, 5s each
#   FUZZTIME=1m scripts/fuzz.sh     # longer
#   scripts/fuzz.sh ./config        # only the targets of these packages
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
FUZZTIME=${FUZZTIME:-5s}

if [ "$#" -eq 0 ]; then
  set -- ./...
fi
# Minimizing a large new input can take a minute of the run's budget;
# keep the budget for fuzzing. A crasher is still minimized this long.
minimize=${FUZZMINIMIZETIME:-5s}

passed=0
failed=0
failures=()
for pkg in $(go list "$@"); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' "$dir"/*_test.go 2>/dev/null | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/' | sort -u)
  for target in $targets; do
    echo "== $pkg $target ($FUZZTIME)"
    if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$minimize" "$pkg"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
      failures+=("$pkg $target")
    fi
  done
done

for f in "${failures[@]}"; do
  echo "fuzz: FAILED: $f (crasher under its testdata/fuzz/)" >&2
done
if [ $((passed + failed)) -eq 0 ]; then
  echo "fuzz: no fuzz targets found in $*" >&2
  failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
