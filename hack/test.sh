#!/usr/bin/env bash
# The project's test command (README, .ci/run): everything, nothing weaker.
#
# Ensures the cached control-plane binaries, starts a plane of its own (its own
# run dir, so a plane you keep for hack/demo.sh or debugging is left alone),
# runs fmt, clippy, unit and integration tests, helm checks, and always stops
# the plane again — on success, failure or Ctrl-C.
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
step "cargo clippy (all targets, warnings are errors)" cargo clippy --locked --all-targets -- -D warnings
# Build the tests while the plane starts: both take a while on 2 cores.
step "build tests" cargo test --locked --no-run
step "control plane up" "$HACK_DIR/cluster.sh" up
KUBECONFIG="$("$HACK_DIR/cluster.sh" kubeconfig)"
export KUBECONFIG
if [[ -x "$HACK_DIR/helm-checks.sh" ]]; then step "helm lint and template" "$HACK_DIR/helm-checks.sh"; fi
step "cargo test (unit, integration, end-to-end)" cargo test --locked --no-fail-fast
