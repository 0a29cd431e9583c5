#!/usr/bin/env bash
# Offline checks of the Helm chart (no cluster): lint, render with the default
# values and with every option on, refuse bad values with a clear message, and
# keep the chart's CRDs identical to the top-level crds/. hack/test.sh runs it;
# tests/chart.rs proves the chart against a real API server.
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT" || exit 1
use_tools_path
need helm "run hack/tools.sh to fetch it"

CHART=charts/stateless-operator
ALL_ON="$CHART/ci/all-on-values.yaml"
failures=0
fail() { printf 'FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# 1. The chart ships the very CRDs the code generates (tests/crd_drift.rs
#    keeps crds/ in step with the code).
for crd in crds/*.yaml; do
  if ! cmp -s "$crd" "$CHART/$crd"; then
    fail "$CHART/$crd differs from $crd; run: cp $crd $CHART/crds/"
  fi
done
for crd in "$CHART"/crds/*.yaml; do
  [[ -f "crds/$(basename "$crd")" ]] || fail "$crd has no counterpart in crds/; remove it"
done

# 2. Chart and crate versions agree.
crate_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
grep -qx "version: $crate_version" "$CHART/Chart.yaml" || fail "Chart.yaml version is not the crate version $crate_version"
grep -qx "appVersion: \"$crate_version\"" "$CHART/Chart.yaml" || fail "Chart.yaml appVersion is not the crate version $crate_version"

# 3. Lint (warnings are errors) and render.
helm lint --strict "$CHART" >"$out/lint-default" 2>&1 || { cat "$out/lint-default" >&2; fail "helm lint (default values)"; }
helm lint --strict "$CHART" -f "$ALL_ON" >"$out/lint-all-on" 2>&1 || { cat "$out/lint-all-on" >&2; fail "helm lint ($ALL_ON)"; }
helm template release "$CHART" -n stateless-system >"$out/default.yaml" || fail "helm template (default values)"
helm template release "$CHART" -n stateless-system -f "$ALL_ON" >"$out/all-on.yaml" || fail "helm template ($ALL_ON)"

# expect_rendered <file> <what> <grep -E pattern>
expect_rendered() {
  grep -Eq -- "$3" "$1" || fail "$(basename "$1"): expected $2 (/$3/)"
}
d="$out/default.yaml" a="$out/all-on.yaml"
expect_rendered "$d" "a ClusterRole in cluster-wide mode" '^kind: ClusterRole$'
expect_rendered "$d" "the webhook configuration" '^kind: ValidatingWebhookConfiguration$'
expect_rendered "$d" "the default image at appVersion" "image: \"ghcr.io/stateless-dev/stateless-operator:$crate_version\""
expect_rendered "$d" "built-in webhook certificates" '--webhook-cert-mode=builtin'
expect_rendered "$d" "a read-only root filesystem" 'readOnlyRootFilesystem: true'
expect_rendered "$d" "no privilege escalation" 'allowPrivilegeEscalation: false'
expect_rendered "$d" "seccomp RuntimeDefault" 'type: RuntimeDefault'
expect_rendered "$d" "leader election" '^            - --leader-elect$'
expect_rendered "$d" "the leader-election Role" 'name: release-stateless-operator-leader-election'
expect_rendered "$d" "a liveness probe on /healthz" 'path: /healthz'
expect_rendered "$d" "a readiness probe on /readyz" 'path: /readyz'
expect_rendered "$a" "namespaced mode: the operator flag" '"--namespace=team-a,team-b"'
expect_rendered "$a" "namespaced mode: a Role in team-a" 'namespace: team-a'
expect_rendered "$a" "namespaced mode: a Role in team-b" 'namespace: team-b'
expect_rendered "$a" "the ServiceMonitor" '^kind: ServiceMonitor$'
expect_rendered "$a" "the cert-manager Certificate" '^kind: Certificate$'
expect_rendered "$a" "cert-manager CA injection" 'cert-manager.io/inject-ca-from: stateless-system/platform-stateless-webhook'
expect_rendered "$a" "files cert mode" '--webhook-cert-mode=files'
expect_rendered "$a" "the Lease name" '--leader-election-lease=platform-stateless-leader'
expect_rendered "$a" "the image digest" '@sha256:0123456789abcdef'
# Namespaced mode must not grant workloads or Secrets cluster-wide: its only
# ClusterRole is the webhook's.
if [[ $(grep -c '^kind: ClusterRole$' "$a") != 1 ]]; then
  fail "all-on (namespaced mode) renders $(grep -c '^kind: ClusterRole$' "$a") ClusterRoles, expected only the webhook's"
fi
helm template release "$CHART" --set webhook.enabled=false >"$out/no-webhook.yaml" || fail "helm template webhook.enabled=false"
expect_rendered "$out/no-webhook.yaml" "the webhook switched off" '--webhook-addr=off'
if grep -q 'ValidatingWebhookConfiguration' "$out/no-webhook.yaml"; then fail "webhook.enabled=false still renders the webhook configuration"; fi

# 4. Bad values are refused with a message naming the value.
# refuse <expected message fragment> <helm --set argument>
refuse() {
  local msg="$1" set="$2" stderr
  if stderr=$(helm template release "$CHART" --set "$set" 2>&1 >/dev/null); then
    fail "--set $set was accepted; expected an error containing: $msg"
  elif [[ "$stderr" != *"$msg"* ]]; then
    fail "--set $set failed, but without \"$msg\": $stderr"
  fi
}
refuse "at '/replicaCount': minimum: got -1, want 0" replicaCount=-1
refuse "at '/logFormat': value must be one of 'json', 'text'" logFormat=xml
refuse "at '/concurrency': minimum: got 0, want 1" concurrency=0
refuse "at '/concurrency': maximum: got 300, want 256" concurrency=300
refuse "at '/resyncSeconds': minimum: got 1, want 10" resyncSeconds=1
refuse "at '/keyPropagationSeconds': minimum: got 0, want 1" keyPropagationSeconds=0
refuse "at '/webhook/failurePolicy': value must be one of 'Ignore', 'Fail'" webhook.failurePolicy=Never
refuse "at '/webhook/timeoutSeconds': maximum: got 10, want 5" webhook.timeoutSeconds=10
refuse "at '/watchNamespaces/0': 'Team_A' does not match pattern" 'watchNamespaces={Team_A}'
refuse "additional properties 'replicaCont' not allowed" replicaCont=2
refuse "at '/image/pullPolicy': value must be one of" image.pullPolicy=Sometimes
refuse "webhook.port and metrics.port must differ" webhook.port=8080
refuse "serviceAccount.name is required when serviceAccount.create is false" serviceAccount.create=false

if ((failures)); then
  printf '%d helm check(s) failed\n' "$failures" >&2
  exit 1
fi
log "helm checks passed: lint, template (default, all-on, webhook off), 12 bad values refused, crds/ in sync"
