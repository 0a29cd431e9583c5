#!/usr/bin/env bash
# The README's run command: a local control plane with its real node, the
# CRD, the operator, and examples/basic.yaml reconciled into a Deployment,
# Service, HPA, PDB and a managed Redis, whose pods run as real containers on
# the node real-0. The plane and the operator keep running afterwards; stop
# both with `./hack/cluster.sh down`.
#
# With STATELESS_REAL_NODE=0 (machines where a real node cannot run) the
# example is reconciled on kwok nodes, where no container starts.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HACK_DIR/node.sh"
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
cargo build --locked --quiet --bin stateless-operator
operator_args=(run --http-addr 127.0.0.1:0 --webhook-addr off)
if real_node_enabled; then
  log "building and loading the images the example runs (session-demo, Redis)"
  "$HACK_DIR/cluster.sh" load-images session-demo redis
  operator_args+=(--session-store-image "$("$HACK_DIR/images.sh" ref redis)")
fi
PIDFILE="$RUN_DIR/pids/operator.pid"
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  log "operator already running (pid $(cat "$PIDFILE"))"
else
  log "starting the operator — log: $RUN_DIR/logs/operator.log"
  # Port 0: the OS picks a free metrics port, so the demo never collides.
  # The webhook needs a ValidatingWebhookConfiguration the chart installs; the demo shows the controller.
  setsid "$REPO_ROOT/target/debug/stateless-operator" "${operator_args[@]}" \
    >"$RUN_DIR/logs/operator.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  sleep 1
  kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -n 20 "$RUN_DIR/logs/operator.log" >&2; die "the operator exited at start-up"; }
fi

log "applying examples/basic.yaml in namespace $NS"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
if real_node_enabled; then
  # The namespace's pods go to the real node: the API server's PodNodeSelector
  # and PodTolerationRestriction plugins add the node selector and toleration.
  kubectl annotate namespace "$NS" --overwrite \
    "scheduler.alpha.kubernetes.io/node-selector=$NODE_LABEL=true" \
    "scheduler.alpha.kubernetes.io/defaultTolerations=[{\"key\":\"$NODE_LABEL\",\"operator\":\"Equal\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]" >/dev/null
fi
kubectl -n "$NS" apply -f examples/basic.yaml
kubectl -n "$NS" wait --for=condition=Ready statelessapp/demo --timeout=180s

log "the StatelessApp and what the operator made of it:"
kubectl -n "$NS" get statelessapp demo
echo
kubectl -n "$NS" get deployments,cronjobs,services,hpa,pdb,networkpolicies,configmaps,secrets -l app.kubernetes.io/managed-by=stateless-operator
echo
kubectl -n "$NS" get statelessapp demo -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'
echo
if real_node_enabled; then
  kubectl -n "$NS" wait --for=condition=Ready pod -l app.kubernetes.io/instance=demo --timeout=120s >/dev/null
  log "its pods run as real containers on the node $NODE_NAME:"
  kubectl -n "$NS" get pods -o wide
  echo
  log "as processes on this machine (containerd's runc, in the pods' cgroups; no password on any command line):"
  ps -o pid,user,rss,args -C session-demo,redis-server
  echo
  log "reach it: kubectl -n $NS port-forward svc/demo 8080:80, then"
  log "  curl -c /tmp/demo.cookies -b /tmp/demo.cookies http://127.0.0.1:8080/session"
  log "  (visits count on, whichever pod answers: served_by names it, store says redis)"
else
  log "STATELESS_REAL_NODE=0: the pods are on kwok nodes, where no container runs"
fi
log "done. Try: export KUBECONFIG=$KUBECONFIG; kubectl -n $NS get sapp"
log "stop everything with: ./hack/cluster.sh down"
