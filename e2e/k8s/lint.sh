#!/usr/bin/env bash
# Static checks of charts/entrypoint: helm lint --strict and helm template
# with every ci/*.yaml values file, the schema rejecting each file in
# bad-values/ with a message naming the field, the structural assertions of
# the Go template tests, and, when a cluster answers, a server-side dry run.
#
#   e2e/k8s/lint.sh              # from anywhere in the repo
#   HELM=/path/to/helm e2e/k8s/lint.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
chart=$root/charts/entrypoint
HELM_VERSION=${HELM_VERSION:-v3.22.0}
export PATH=$PATH:$(go env GOPATH)/bin
HELM=${HELM:-$(command -v helm || true)}
if [ -z "$HELM" ]; then
  echo "lint: installing helm $HELM_VERSION through the Go module proxy"
  go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  HELM=$(go env GOPATH)/bin/helm
fi
export HELM

fail=0
pass=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The schema is generated; a hand edit of the JSON would be lost.
if python3 "$here/gen_schema.py" "$tmp/schema.json" && cmp -s "$tmp/schema.json" "$chart/values.schema.json"; then
  ok "values.schema.json matches e2e/k8s/gen_schema.py"
else
  bad "values.schema.json differs from e2e/k8s/gen_schema.py output (run: python3 e2e/k8s/gen_schema.py charts/entrypoint/values.schema.json)"
fi

for f in "$chart"/ci/*.yaml; do
  n=$(basename "$f")
  if "$HELM" lint --strict "$chart" -f "$f" >"$tmp/lint.out" 2>&1; then
    ok "helm lint --strict -f ci/$n"
  else
    bad "helm lint --strict -f ci/$n"; sed 's/^/     /' "$tmp/lint.out"
  fi
  if "$HELM" template lint-release "$chart" -n lint -f "$f" >"$tmp/${n%.yaml}.out" 2>"$tmp/tpl.err"; then
    ok "helm template -f ci/$n ($(grep -c '^kind:' "$tmp/${n%.yaml}.out") objects)"
  else
    bad "helm template -f ci/$n"; sed 's/^/     /' "$tmp/tpl.err"
  fi
done

# Wrong values must be rejected before anything is rendered, naming the field.
for f in "$here"/bad-values/*.yaml; do
  n=$(basename "$f")
  want=$(sed -n 's/^# expect: //p' "$f")
  if "$HELM" template x "$chart" -f "$f" >/dev/null 2>"$tmp/err"; then
    bad "bad-values/$n was accepted"
  elif grep -q "values don't meet the specifications of the schema" "$tmp/err" && grep -q -- "$want" "$tmp/err"; then
    ok "bad-values/$n rejected: $(grep -m1 -- "$want" "$tmp/err" | sed 's/^ *//')"
  else
    bad "bad-values/$n rejected without naming $want:"; sed 's/^/     /' "$tmp/err"
  fi
done

# Structural assertions (probes, security, grace period, no subPath, ...).
if (cd "$root" && go test -count=1 -run 'TestChart' ./e2e/k8s/) >"$tmp/go.out" 2>&1; then
  ok "go test -run TestChart ./e2e/k8s/"
else
  bad "go test -run TestChart ./e2e/k8s/"; sed 's/^/     /' "$tmp/go.out"
fi

# Server-side dry run when a cluster answers: the API server's own
# validation of every object (the ServiceMonitor only if its CRD exists).
export KUBECONFIG=${KUBECONFIG:-/tmp/k8s-state/admin.kubeconfig}
if kubectl get --raw /readyz >/dev/null 2>&1; then
  kubectl create namespace lint --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  has_sm=$(kubectl get crd servicemonitors.monitoring.coreos.com -o name 2>/dev/null || true)
  for out in "$tmp"/*-values.out; do
    n=$(basename "$out" .out)
    if [ -z "$has_sm" ]; then
      python3 - "$out" <<'PY'
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
open(sys.argv[1], "w").write("\n---\n".join(d for d in docs if "kind: ServiceMonitor" not in d))
PY
    fi
    if kubectl apply --dry-run=server -n lint -f "$out" >"$tmp/dry.out" 2>&1; then
      ok "kubectl apply --dry-run=server ci/$n.yaml"
    else
      bad "kubectl apply --dry-run=server ci/$n.yaml"; sed 's/^/     /' "$tmp/dry.out"
    fi
  done
  kubectl delete namespace lint --wait=false >/dev/null 2>&1 || true
elif [ "${E2E_REQUIRE_CLUSTER:-0}" = 1 ]; then
  bad "kubectl --dry-run=server: no cluster answers at $KUBECONFIG (start it with ../shared/k8s-local/setup.sh or e2e/k8s/run.sh)"
else
  echo "skip kubectl --dry-run=server: no cluster at $KUBECONFIG"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
