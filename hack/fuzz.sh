#!/usr/bin/env bash
# Coverage-guided fuzzing of the byte parsers (fuzz/): the manifest reader of
# `lint` and the webhook's AdmissionReview decoder, with cargo-fuzz/libFuzzer.
#
#   hack/fuzz.sh [SECONDS] [TARGET...]   # default: 20 s per target, both
#   hack/fuzz.sh 1800                    # a longer run, e.g. before a release
#
# Installs what it needs when missing: the nightly toolchain (rustup) and
# cargo-fuzz (cached in the project cache, never in ~/.cargo/bin). Seeds are
# the repository's fixtures; the corpus grows in the cache, so later runs start
# from what earlier ones found. A crash stops the run, keeps the input under
# $CACHE_ROOT/fuzz/artifacts/TARGET/ and exits non-zero.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

SECONDS_PER_TARGET="${1:-20}"
shift || true
[[ $SECONDS_PER_TARGET =~ ^[1-9][0-9]*$ ]] || die "usage: hack/fuzz.sh [SECONDS] [TARGET...] (SECONDS a positive integer, got '$SECONDS_PER_TARGET')"
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(manifests admission_review)

need rustup "install Rust with rustup (https://rustup.rs)"
if ! rustup run nightly cargo --version >/dev/null 2>&1; then
  log "fuzz: installing the nightly toolchain (libFuzzer's instrumentation needs it)"
  rustup toolchain install nightly --profile minimal >&2 || die "fuzz: rustup could not install the nightly toolchain"
fi

FUZZ_ROOT="$CACHE_ROOT/fuzz"
CARGO_FUZZ_VERSION=0.13.2
CARGO_FUZZ="$FUZZ_ROOT/cargo-fuzz-$CARGO_FUZZ_VERSION/bin/cargo-fuzz"
if [[ ! -x $CARGO_FUZZ ]]; then
  log "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $FUZZ_ROOT"
  cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION" \
    --root "$FUZZ_ROOT/cargo-fuzz-$CARGO_FUZZ_VERSION" >&2 || die "fuzz: cargo install cargo-fuzz $CARGO_FUZZ_VERSION failed"
fi

# Outside the repository, like the other caches: a fresh clone builds on it.
export CARGO_TARGET_DIR="$FUZZ_ROOT/target"
# No sanitizer: the code is safe Rust, so panics (what libFuzzer reports) are
# the findings; ASan would only slow the build and each run. For a run with
# it: `cargo +nightly fuzz run --fuzz-dir fuzz TARGET` from the repository.
FUZZ=(rustup run nightly "$CARGO_FUZZ")
log "fuzz: building ${TARGETS[*]} (nightly, coverage instrumentation; cached in $CARGO_TARGET_DIR)"
for target in "${TARGETS[@]}"; do
  "${FUZZ[@]}" build --fuzz-dir fuzz --sanitizer none "$target" >&2 || die "fuzz: building $target failed"
done

seeds_of() {
  case "$1" in
    manifests) echo "tests/fixtures/lint tests/corpus/charts examples crds" ;;
    admission_review) echo "tests/fixtures/admission" ;;
    *) die "fuzz: unknown target '$1' (manifests, admission_review)" ;;
  esac
}

for target in "${TARGETS[@]}"; do
  corpus="$FUZZ_ROOT/corpus/$target"
  artifacts="$FUZZ_ROOT/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  read -r -a seeds <<<"$(seeds_of "$target")"
  log "fuzz: $target for ${SECONDS_PER_TARGET}s (corpus $corpus, seeds ${seeds[*]})"
  out="$FUZZ_ROOT/$target.log"
  if ! "${FUZZ[@]}" run --fuzz-dir fuzz --sanitizer none "$target" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$SECONDS_PER_TARGET" -artifact_prefix="$artifacts/" \
      -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$out" 2>&1; then
    tail -n 40 "$out" >&2
    die "fuzz: $target failed; the input is in $artifacts/ (log: $out)"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$out" | tail -1)
  log "fuzz: $target: ${runs:-?} inputs in ${SECONDS_PER_TARGET}s, ${cov:-cov: ?}, no crash; corpus $(find "$corpus" -type f | wc -l) inputs"
done
