#!/usr/bin/env bash
# End-to-end on kind: a real cluster with a real kubelet, the operator image
# built from the Dockerfile, installed with the Helm chart, then the Rust
# end-to-end suite (tests/e2e.rs) with the operator running in the cluster.
#
#   tests/e2e/kind.sh
#
# Needs docker, kind, kubectl, helm and cargo. Environment:
#   KIND_CLUSTER_NAME  cluster name (default stateless-e2e)
#   KIND_NODE_IMAGE    node image, e.g. kindest/node:v1.35.0 (default: kind's)
#   KEEP_CLUSTER=1     keep the cluster afterwards (default: delete it)
#   E2E_TIMEOUT_SECS   per-wait timeout of the suite (default 300)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"

CLUSTER="${KIND_CLUSTER_NAME:-stateless-e2e}"
IMAGE_REPOSITORY="${E2E_IMAGE_REPOSITORY:-ghcr.io/stateless-dev/stateless-operator}"
IMAGE_TAG="${E2E_IMAGE_TAG:-e2e}"
RELEASE="${E2E_RELEASE:-stateless-operator}"
NAMESPACE="${E2E_NAMESPACE:-stateless-system}"

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
for tool in docker kind kubectl helm cargo; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required on PATH"
done

KUBECONFIG_FILE="$(mktemp)"
export KUBECONFIG="$KUBECONFIG_FILE"
created=0

diagnose() {
  log "diagnostics"
  kubectl get pods,deployments,services -A -o wide || true
  kubectl -n "$NAMESPACE" describe deployment "$RELEASE" || true
  kubectl -n "$NAMESPACE" logs "deployment/$RELEASE" --all-containers --tail=200 || true
  kubectl get events -A --sort-by=.lastTimestamp | tail -n 50 || true
  kubectl get statelessapps -A -o yaml || true
}

cleanup() {
  local rc=$?
  ((rc == 0)) || diagnose
  if ((created)) && [[ "${KEEP_CLUSTER:-0}" != 1 ]]; then
    log "deleting kind cluster $CLUSTER"
    kind delete cluster --name "$CLUSTER" || true
  fi
  rm -f "$KUBECONFIG_FILE"
  exit "$rc"
}
trap cleanup EXIT

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "reusing kind cluster $CLUSTER"
else
  log "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 180s
  created=1
fi
kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG_FILE"

log "building $IMAGE_REPOSITORY:$IMAGE_TAG"
docker build -t "$IMAGE_REPOSITORY:$IMAGE_TAG" .
kind load docker-image "$IMAGE_REPOSITORY:$IMAGE_TAG" --name "$CLUSTER"
# The examples run the project's session demo, under the name they use.
# Its tag is the crate's version (examples/session-demo/Cargo.toml, the first
# `version =` line, the [package] one); the build context is the repo root.
DEMO_IMAGE="ghcr.io/stateless-dev/session-demo:$(sed -n 's/^version = "\(.*\)"/\1/p' examples/session-demo/Cargo.toml | head -n1)"
log "building $DEMO_IMAGE"
docker build -f examples/session-demo/Dockerfile -t "$DEMO_IMAGE" .
kind load docker-image "$DEMO_IMAGE" --name "$CLUSTER"

log "installing the chart (release $RELEASE in $NAMESPACE)"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
# The chart's Pods must pass Pod Security "restricted".
kubectl label namespace "$NAMESPACE" --overwrite pod-security.kubernetes.io/enforce=restricted
# Two replicas: leader election picks one reconciler; both serve the webhook.
helm upgrade --install "$RELEASE" charts/stateless-operator -n "$NAMESPACE" \
  --set image.repository="$IMAGE_REPOSITORY" --set image.tag="$IMAGE_TAG" \
  --set image.pullPolicy=Never --set replicaCount=2 --set logLevel=debug \
  --wait --timeout 5m
kubectl get crd statelessapps.stateless.dev

log "running the end-to-end suite (operator in cluster)"
E2E_OPERATOR=in-cluster E2E_RELEASE="$RELEASE" E2E_NAMESPACE="$NAMESPACE" \
  E2E_TIMEOUT_SECS="${E2E_TIMEOUT_SECS:-300}" \
  cargo test --locked --test e2e -- --nocapture

log "uninstalling: Helm keeps the CRD"
helm uninstall "$RELEASE" -n "$NAMESPACE" --wait
kubectl get crd statelessapps.stateless.dev >/dev/null || die "the CRD was deleted by helm uninstall"
log "kind end-to-end passed"
