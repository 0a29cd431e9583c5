#!/usr/bin/env bash
# End-to-end with the operator in the cluster, on the local plane's real node:
# the path tests/e2e/kind.sh takes on kind, without a container engine.
#
#   hack/e2e-local.sh        (needs a plane with its real node: hack/cluster.sh up)
#
# The operator, session-demo and Redis images are built locally and loaded
# into the node under the exact names the chart and the examples use (like
# `kind load docker-image`); the chart installs the operator with 2 replicas,
# leader election and built-in webhook certificates into a namespace that
# enforces Pod Security "restricted" and whose pods go to the real node; then
# tests/e2e.rs runs in its in-cluster mode, with the examples' pods on the
# real node too. The release is uninstalled afterwards (also on failure).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
use_tools_path
KUBECONFIG="$("$HACK_DIR/cluster.sh" kubeconfig)"
export KUBECONFIG

RELEASE="${E2E_RELEASE:-stateless-operator}"
NAMESPACE="${E2E_NAMESPACE:-stateless-system}"
REAL_NODE_LABEL="stateless.dev/real-node"

log "loading the operator, session-demo and Redis images into the real node"
"$HACK_DIR/cluster.sh" load-images operator session-demo redis
REDIS_IMAGE="$("$HACK_DIR/images.sh" ref redis)"

diagnose() {
  log "diagnostics"
  kubectl get pods -A -o wide || true
  kubectl -n "$NAMESPACE" describe pods -l "app.kubernetes.io/instance=$RELEASE" | tail -n 60 || true
  kubectl -n "$NAMESPACE" logs -l "app.kubernetes.io/instance=$RELEASE" --tail=100 --prefix || true
  kubectl get events -A --sort-by=.lastTimestamp | tail -n 40 || true
}
cleanup() {
  local rc=$?
  ((rc == 0)) || diagnose
  helm uninstall "$RELEASE" -n "$NAMESPACE" --wait --timeout 2m >/dev/null 2>&1 || true
  kubectl delete namespace "$NAMESPACE" --wait=false >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT

log "installing the chart (release $RELEASE in $NAMESPACE, 2 replicas, on the real node)"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label namespace "$NAMESPACE" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
kubectl annotate namespace "$NAMESPACE" --overwrite \
  "scheduler.alpha.kubernetes.io/node-selector=$REAL_NODE_LABEL=true" \
  "scheduler.alpha.kubernetes.io/defaultTolerations=[{\"key\":\"$REAL_NODE_LABEL\",\"operator\":\"Equal\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]" >/dev/null
t=$SECONDS
helm upgrade --install "$RELEASE" charts/stateless-operator -n "$NAMESPACE" \
  --set replicaCount=2 --set logLevel=debug --set sessionStore.image="$REDIS_IMAGE" \
  --wait --timeout 5m
log "operator pods Ready $((SECONDS - t))s after helm install"
kubectl -n "$NAMESPACE" get pods -o wide

log "running the end-to-end suite (operator in cluster, apps on the real node)"
E2E_OPERATOR=in-cluster E2E_REAL_NODE=1 E2E_RELEASE="$RELEASE" E2E_NAMESPACE="$NAMESPACE" \
  E2E_TIMEOUT_SECS="${E2E_TIMEOUT_SECS:-240}" \
  cargo test --locked --test e2e -- --nocapture

log "uninstalling: Helm keeps the CRD"
helm uninstall "$RELEASE" -n "$NAMESPACE" --wait
kubectl get crd statelessapps.stateless.dev >/dev/null || die "the CRD was deleted by helm uninstall"
log "in-cluster end-to-end on the real node passed"
