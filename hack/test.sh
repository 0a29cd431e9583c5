#!/usr/bin/env bash
# The project's test command (README, .ci/run): everything, nothing weaker.
#
# Ensures the cached control-plane binaries, starts a plane of its own (its own
# run dir, so a plane you keep for hack/demo.sh or debugging is left alone)
# with its real node, runs fmt, clippy, a bounded fuzz run, unit and
# integration tests (the real-node ones with real containers), helm checks, the in-cluster
# end-to-end suite on the real node (hack/e2e-local.sh), and always stops the
# plane again — on success, failure or Ctrl-C.
#
# With STATELESS_REAL_NODE=0 the plane has kwok nodes only, and every test
# that needs real containers fails saying so: nothing passes by skipping.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

need cargo "install Rust with rustup (https://rustup.rs)"
"$HACK_DIR/tools.sh"
use_tools_path

export STATELESS_RUN_DIR="$CACHE_ROOT/run-test-$$"
cleanup() { "$HACK_DIR/cluster.sh" down || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { log "$1"; local t=$SECONDS; shift; "$@"; log "  ok ($((SECONDS - t))s)"; }

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy (all targets, warnings are errors)" cargo clippy --locked --workspace --all-targets -- -D warnings
step "build tests" cargo test --locked --workspace --no-run
# Bounded coverage-guided fuzzing of the byte parsers (a longer run: hack/fuzz.sh 1800).
step "fuzz the manifest reader and the AdmissionReview decoder (20 s each)" "$HACK_DIR/fuzz.sh" 20
# The images the real node runs (release builds; rebuilt only when changed).
step "images (operator, session-demo, Redis, pause)" "$HACK_DIR/images.sh" build
# The real node's failure paths, before this run's own plane takes the node.
if [[ "${STATELESS_REAL_NODE:-1}" != 0 ]]; then step "real node failure paths" "$HACK_DIR/node-failures.sh"; fi
step "control plane up" "$HACK_DIR/cluster.sh" up
KUBECONFIG="$("$HACK_DIR/cluster.sh" kubeconfig)"
export KUBECONFIG
step "load images into the real node" "$HACK_DIR/cluster.sh" load-images redis session-demo
if [[ -x "$HACK_DIR/helm-checks.sh" ]]; then step "helm lint and template" "$HACK_DIR/helm-checks.sh"; fi
# The measured experiments print their figures, so they run on their own
# with the output shown (and are skipped in the main run, not run twice).
step "cargo test (unit, integration, end-to-end, real node)" \
  cargo test --locked --workspace --no-fail-fast -- --skip session_proof --skip hpa_scales_the_app_on_real_cpu \
  --skip jwt_keys_reach_running_pods_and_rotate_without_a_restart
step "session proof and HPA on real CPU (figures below)" \
  cargo test --locked --test session_proof --test hpa_real_cpu -- --nocapture --test-threads 1
step "JWT key rotation reaching running pods on the real node (figure below)" \
  cargo test --locked --test real_node -- --nocapture jwt_keys_reach_running_pods_and_rotate_without_a_restart
step "end-to-end, operator in the cluster on the real node" "$HACK_DIR/e2e-local.sh"
