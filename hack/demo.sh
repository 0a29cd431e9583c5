#!/usr/bin/env bash
# The README's run command: a local control plane, the CRD, the operator, and
# examples/basic.yaml reconciled into a Deployment, Service, HPA, PDB and a
# managed Redis. The plane and the operator keep running afterwards; stop both
# with `./hack/cluster.sh down`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
need cargo "install Rust with rustup (https://rustup.rs)"

"$HACK_DIR/cluster.sh" up
use_tools_path
KUBECONFIG="$("$HACK_DIR/cluster.sh" kubeconfig)"
export KUBECONFIG
NS="${DEMO_NAMESPACE:-demo}"

log "control plane:"
kubectl get --raw /version | grep -E '"gitVersion"'
kubectl get nodes

log "installing the StatelessApp CRD"
kubectl apply -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/statelessapps.stateless.dev --timeout=30s >/dev/null

log "building the operator (cached after the first build)"
cargo build --locked --quiet
PIDFILE="$RUN_DIR/pids/operator.pid"
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  log "operator already running (pid $(cat "$PIDFILE"))"
else
  log "starting the operator — log: $RUN_DIR/logs/operator.log"
  # Port 0: the OS picks a free metrics port, so the demo never collides.
  # The webhook needs a ValidatingWebhookConfiguration the chart installs; the demo shows the controller.
  setsid "$REPO_ROOT/target/debug/stateless-operator" run --http-addr 127.0.0.1:0 --webhook-addr off \
    >"$RUN_DIR/logs/operator.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  sleep 1
  kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -n 20 "$RUN_DIR/logs/operator.log" >&2; die "the operator exited at start-up"; }
fi

log "applying examples/basic.yaml in namespace $NS"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$NS" apply -f examples/basic.yaml
kubectl -n "$NS" wait --for=condition=Ready statelessapp/podinfo --timeout=120s

log "the StatelessApp and what the operator made of it:"
kubectl -n "$NS" get statelessapp podinfo
echo
kubectl -n "$NS" get deployments,services,hpa,pdb,networkpolicies,configmaps,secrets -l app.kubernetes.io/managed-by=stateless-operator
echo
kubectl -n "$NS" get statelessapp podinfo -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'
echo
log "done. Try: export KUBECONFIG=$KUBECONFIG; kubectl -n $NS get sapp"
log "stop everything with: ./hack/cluster.sh down"
