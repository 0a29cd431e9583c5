#!/usr/bin/env bash
# The measured session proof (tests/session_proof.rs), with its table shown:
# the session demo on the local plane's real node in three modes (managed
# Redis; sessions in memory; in memory behind sessionAffinity: ClientIP),
# each under a bounded load while a pod is deleted, the Deployment rolls and
# scales up and down. Requests, errors, sessions lost and the spread over
# pods are printed as the README's table.
#
#   ./hack/session-proof.sh     (uses a running plane, or starts one and leaves it running)
#
# hack/test.sh runs it as one of its steps.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
"$HACK_DIR/cluster.sh" up
KUBECONFIG="$("$HACK_DIR/cluster.sh" kubeconfig)"
export KUBECONFIG
"$HACK_DIR/cluster.sh" load-images session-demo redis
cargo test --locked --test session_proof -- --nocapture
