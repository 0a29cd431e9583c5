#!/usr/bin/env bash
# The scale benchmark (benches/scale.rs) on a plane of its own: kwok nodes
# only (enough for 1,000 apps' pods), its own run dir, torn down at the end.
#
#   hack/bench.sh                      # N = 100 and 1,000, 10-minute idle window
#   BENCH_APPS=50 BENCH_IDLE_SECONDS=30 hack/bench.sh   # a quick look
#
# Other knobs: BENCH_NAMESPACES (10), BENCH_CONCURRENCY (16, the operator's
# default; the raw writer uses the same), BENCH_KWOK_NODES (40).
# It prints the figures that docs/benchmarks.md records; it asserts nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

export STATELESS_RUN_DIR="$CACHE_ROOT/run-bench"
export STATELESS_REAL_NODE=0
export STATELESS_KWOK_NODES="${BENCH_KWOK_NODES:-40}"
CLUSTER="$HACK_DIR/cluster.sh"

"$CLUSTER" down >/dev/null 2>&1 || true
trap '"$CLUSTER" down >/dev/null 2>&1 || true' EXIT
log "bench: starting a plane with $STATELESS_KWOK_NODES kwok nodes (run dir $STATELESS_RUN_DIR)"
"$CLUSTER" up >/dev/null
KUBECONFIG="$("$CLUSTER" kubeconfig)"
export KUBECONFIG
export BENCH_AUDIT_LOG="$STATELESS_RUN_DIR/audit.log"
"$KUBECTL_BIN/kubectl" apply --server-side -f crds/statelessapps.stateless.dev.yaml >/dev/null
"$KUBECTL_BIN/kubectl" wait --for=condition=Established crd/statelessapps.stateless.dev --timeout=60s >/dev/null

log "bench: release build of the operator and the benchmark"
cargo build --release --locked --bin stateless-operator
log "bench: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)'), $(nproc) cores, $(date -u +%FT%TZ)"
cargo bench --locked --bench scale
