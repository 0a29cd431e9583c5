#!/usr/bin/env bash
# Throughput and peak memory of `stateless-operator lint` against kube-score on
# the same generated input, one run after the other:
#
#   ./hack/bench-lint.sh [OBJECTS] [RUNS]      # defaults: 10000 objects, 5 runs
#
# The input is the stream `benches/lint_throughput.rs` generates (ConfigMap,
# Deployment, Service and Ingress per app over 100 namespaces, a fifth of the
# apps with a violation). Both tools read it from a file and write their
# findings to /dev/null (lint as JSON, kube-score in its `ci` format). Times
# are wall-clock seconds, memory is the peak RSS that /usr/bin/time reports;
# the figures printed are medians over the runs. kube-score is built from the
# Go module proxy once and cached. Nothing here asserts a time: it measures.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OBJECTS="${1:-10000}"
RUNS="${2:-5}"
KUBE_SCORE_VERSION="v1.20.0"
KUBE_SCORE_BIN="$CACHE_ROOT/kube-score-$KUBE_SCORE_VERSION"
[[ "$OBJECTS" =~ ^[0-9]+$ && "$OBJECTS" -ge 4 ]] || die "OBJECTS must be a number of at least 4, not '$OBJECTS'"
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -ge 1 ]] || die "RUNS must be a positive number, not '$RUNS'"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed for peak memory (Debian package 'time')"
need go

if [[ ! -x "$KUBE_SCORE_BIN/kube-score" ]]; then
  log "building kube-score $KUBE_SCORE_VERSION from the Go module proxy"
  mkdir -p "$KUBE_SCORE_BIN"
  GOBIN="$KUBE_SCORE_BIN" GOFLAGS=-mod=mod go install "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION" \
    || die "go install of kube-score $KUBE_SCORE_VERSION failed"
fi

log "building the release binary and the input generator"
(cd "$REPO_ROOT" && cargo build --release --quiet)
(cd "$REPO_ROOT" && cargo bench --bench lint_throughput --no-run --quiet 2>/dev/null) \
  || die "cargo bench --bench lint_throughput --no-run failed"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
input="$work/input.yaml"
(cd "$REPO_ROOT" && cargo bench --bench lint_throughput --quiet -- --write "$input" "$OBJECTS")
: > "$work/empty.yaml"
lint_bin="$REPO_ROOT/target/release/stateless-operator"
input_bytes="$(stat -c %s "$input")"

# One run: prints "seconds max_rss_kib"; fails on a crash (exit status above 2).
measure() {
  local out="$work/time.txt" status=0
  /usr/bin/time -o "$out" -f "%e %M %x" "$@" > /dev/null 2> "$work/stderr.txt" || status=$?
  local code
  code="$(awk 'END {print $3}' "$out")"
  [[ "$code" =~ ^[0-2]$ ]] || die "$* exited with status ${code:-$status}: $(head -c 500 "$work/stderr.txt")"
  awk 'END {print $1, $2}' "$out"
}
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

: > "$work/lint.txt"; : > "$work/ks.txt"
for run in $(seq 1 "$RUNS"); do
  measure "$KUBE_SCORE_BIN/kube-score" score --output-format ci "$input" >> "$work/ks.txt"
  measure "$lint_bin" lint --format json "$input" >> "$work/lint.txt"
  log "run $run/$RUNS: kube-score $(tail -1 "$work/ks.txt" | cut -d' ' -f1) s, lint $(tail -1 "$work/lint.txt" | cut -d' ' -f1) s"
done
empty_kib="$(measure "$lint_bin" lint --format json "$work/empty.yaml" | cut -d' ' -f2)"
ks_s="$(cut -d' ' -f1 "$work/ks.txt" | median)"
lint_s="$(cut -d' ' -f1 "$work/lint.txt" | median)"
ks_kib="$(cut -d' ' -f2 "$work/ks.txt" | median)"
lint_kib="$(cut -d' ' -f2 "$work/lint.txt" | median)"
findings="$("$lint_bin" lint --format json "$input" 2>/dev/null | grep -o '"rule":' | wc -l || true)"

awk -v n="$OBJECTS" -v bytes="$input_bytes" -v runs="$RUNS" -v ks="$ks_s" -v li="$lint_s" \
    -v ksk="$ks_kib" -v lik="$lint_kib" -v ek="$empty_kib" -v f="$findings" -v cores="$(nproc)" 'BEGIN {
  mib = bytes / 1048576
  printf "input: %d objects, %.2f MiB; medians of %d runs each, alternating; %d cores\n", n, mib, runs, cores
  printf "%-22s %10s %12s %14s\n", "tool", "seconds", "objects/s", "peak RSS MiB"
  printf "%-22s %10.3f %12.0f %14.1f\n", "kube-score '"$KUBE_SCORE_VERSION"'", ks, n / ks, ksk / 1024
  printf "%-22s %10.3f %12.0f %14.1f\n", "stateless-operator lint", li, n / li, lik / 1024
  printf "lint findings: %d\n", f
  printf "throughput ratio (lint / kube-score): %.1fx\n", ks / li
  printf "lint peak RSS / input: %.1fx (%.1f MiB; an empty input peaks at %.1f MiB, so the input costs %.1f MiB = %.1fx)\n", \
    lik * 1024 / bytes, lik / 1024, ek / 1024, (lik - ek) / 1024, (lik - ek) * 1024 / bytes
}'
