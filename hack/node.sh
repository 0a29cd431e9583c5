# shellcheck shell=bash
# The real node of the local plane: one kubelet named real-0 with containerd,
# runc, the CNI bridge plugin, kube-proxy and CoreDNS, next to the kwok nodes.
# Sourced by hack/cluster.sh after hack/lib.sh; do not run it.
#
# Network isolation (the machine's rule: traffic only on loopback and on the
# project's own bridge):
#   - Pods live on the bridge $NODE_BRIDGE ($NODE_SUBNET), created by us with the
#     node address. The CNI bridge plugin runs with isGateway=false, so it
#     never turns on machine-wide forwarding; forwarding is enabled on this
#     bridge only. Pods get no default route: only their subnet and a route to
#     the Service range through the node address.
#   - A FORWARD guard drops anything between the bridge and another interface,
#     and an OUTPUT guard refuses the kwok pods' fake addresses, which would
#     otherwise leave by the default route when a Service points at them.
#   - containerd resolves every registry to a closed loopback port: images come
#     from hack/images.sh only, and a missing image fails without a packet
#     leaving the machine.
#   - The default route, existing interfaces and machine-wide sysctls are left
#     as they are; the sysctls kubelet writes are recorded and restored.
#
# Everything `node_up` creates is recorded under $RUN_DIR/node, and
# `node_down` removes exactly that, also after a crash.

NODE_NAME="real-0"
NODE_LABEL="stateless.dev/real-node"
NODE_BRIDGE="${STATELESS_BRIDGE:-sobr0}"
NODE_SUBNET="10.88.0.0/24"
NODE_IP="10.88.0.1"
SERVICE_CIDR="10.96.0.0/16"
KWOK_POD_CIDR="10.244.0.0/16"
PAUSE_IMAGE="registry.k8s.io/pause:3.10.1"
NODE_DIR="$RUN_DIR/node"
NODE_OWNER_FILE="$CACHE_ROOT/real-node.owner"
# Debian packages the node needs, and the command each provides.
NODE_PACKAGES=(containerd:containerd runc:runc containernetworking-plugins:/usr/lib/cni/bridge
               iptables:iptables-save conntrack:conntrack nftables:nft ipset:ipset)
# Host sysctls kubelet or kube-proxy may write; restored on down.
NODE_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
              kernel.keys.root_maxbytes net.ipv4.conf.all.route_localnet net.ipv4.ip_forward
              net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
              net.netfilter.nf_conntrack_tcp_timeout_close_wait)
# Fixed host paths kubelet, containerd and CNI use whatever their flags say;
# the ones that did not exist before `up` are removed by `down`.
NODE_HOST_PATHS=(/var/lib/kubelet /var/log/containers /run/containerd /var/lib/cni /run/netns)
# Chain name prefixes the node's components create in iptables/ip6tables.
NODE_CHAIN_RE='KUBE-|CNI-|STATELESS-'
NODE_COMPONENTS=(metrics-server coredns kube-router kube-proxy kubelet containerd)
# ipsets kube-router creates (KUBE-SRC-*, KUBE-DST-*, and TMP-* while syncing).
NODE_IPSET_RE='^(KUBE-|TMP-)'

# STATELESS_KUBELET_ARGS: extra kubelet flags (e.g. --v 4 when debugging),
# split on spaces.

real_node_enabled() { [[ "${STATELESS_REAL_NODE:-1}" != 0 ]]; }

node_fail() { # node_fail <component> <why>: a clear error naming the log; undo everything.
  local name="$1" why="$2" logf="$LOGS/$1.log"
  printf 'error: real node: %s %s\n' "$name" "$why" >&2
  if [[ -f "$logf" ]]; then printf 'last lines of %s:\n' "$logf" >&2; tail -n 20 "$logf" >&2 || true; fi
  rm -rf "$CACHE_ROOT/logs/last-failed-plane"
  cp -r "$LOGS" "$CACHE_ROOT/logs/last-failed-plane" 2>/dev/null || true
  printf 'logs kept in %s; set STATELESS_REAL_NODE=0 to run the plane without the real node\n' \
    "$CACHE_ROOT/logs/last-failed-plane" >&2
  do_down >/dev/null 2>&1 || true
  exit 1
}

# ---------------------------------------------------------------------------
# Preflight: everything that can be refused is checked before anything changes.

node_preflight() {
  [[ "$(uname -s)" == Linux ]] || die "real node: needs Linux (this is $(uname -s)); set STATELESS_REAL_NODE=0 to run the plane with kwok nodes only"
  (( EUID == 0 )) || die "real node: needs root (kubelet, containerd, the bridge and iptables); run as root or set STATELESS_REAL_NODE=0"
  local missing=() entry pkg cmd
  for entry in "${NODE_PACKAGES[@]}"; do
    pkg="${entry%%:*}"; cmd="${entry#*:}"
    if [[ "$cmd" == /* ]]; then [[ -e "$cmd" ]] || missing+=("$pkg")
    else command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg"); fi
  done
  if ((${#missing[@]})); then
    command -v apt-get >/dev/null 2>&1 || die "real node: needs the Debian packages ${missing[*]} and there is no apt-get; install them or set STATELESS_REAL_NODE=0"
    log "real node: installing Debian packages ${missing[*]}"
    local aptlog="$CACHE_ROOT/logs/apt-node.log"; mkdir -p "$CACHE_ROOT/logs"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >"$aptlog" 2>&1; then
      # An old package list is the usual reason; refresh it once.
      DEBIAN_FRONTEND=noninteractive apt-get update >>"$aptlog" 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >>"$aptlog" 2>&1 \
        || { tail -n 15 "$aptlog" >&2; die "real node: apt-get install ${missing[*]} failed (log: $aptlog)"; }
    fi
  fi
  [[ -d /sys/fs/cgroup/memory || -f /sys/fs/cgroup/cgroup.controllers ]] || die "real node: no memory cgroup at /sys/fs/cgroup; kubelet cannot run here (STATELESS_REAL_NODE=0)"
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || die "real node: the kernel has no overlay filesystem, which containerd's snapshotter needs"

  node_clean_leftovers
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    die "real node: an interface named $NODE_BRIDGE exists and no plane of ours owns it; remove it or pick another name with STATELESS_BRIDGE"
  fi
  local r
  for r in "$NODE_SUBNET" "$SERVICE_CIDR" "$KWOK_POD_CIDR"; do
    if ip -4 route show to match "$r" | grep -v '^default' | grep -q . || [[ -n "$(ip -4 route show root "$r")" ]]; then
      die "real node: $r is already routed on this machine ($(ip -4 route show root "$r" | head -n1)); the local plane needs it for itself"
    fi
  done
}

# A node whose plane died (a crashed run, a killed test) is torn down here, so
# that the next `up` starts clean; a live one of another plane is refused.
node_clean_leftovers() {
  [[ -f "$NODE_OWNER_FILE" ]] || return 0
  local owner bridge
  owner=$(sed -n 1p "$NODE_OWNER_FILE")
  # The crashed plane's bridge, not this run's STATELESS_BRIDGE: a name this
  # run was given may belong to an interface that is not ours.
  bridge=$(sed -n 2p "$NODE_OWNER_FILE")
  [[ "$owner" == "$RUN_DIR" ]] && return 0
  if [[ -d "$owner" ]] && STATELESS_RUN_DIR="$owner" "$HACK_DIR/cluster.sh" status >/dev/null 2>&1; then
    die "real node: the plane in $owner runs the real node; stop it first (STATELESS_RUN_DIR=$owner $HACK_DIR/cluster.sh down) or set STATELESS_REAL_NODE=0"
  fi
  log "real node: cleaning up a node left by a crashed plane in $owner"
  STATELESS_RUN_DIR="$owner" STATELESS_BRIDGE="${bridge:-sobr0}" "$HACK_DIR/cluster.sh" down >&2 || true
  # The plane's down removes the owner file; a plane whose run dir is gone
  # left only host state, which the generic clean-up below removes.
  if [[ -f "$NODE_OWNER_FILE" ]]; then
    node_teardown_host "$owner" "${bridge:-sobr0}"
    rm -f "$NODE_OWNER_FILE"
  fi
}

# ---------------------------------------------------------------------------
# Network: the bridge and the guards exist before the API server starts,
# because the API server listens on the node address (pods reach it there).

node_network_up() {
  mkdir -p "$NODE_DIR"
  printf '%s\n%s\n' "$RUN_DIR" "$NODE_BRIDGE" > "$NODE_OWNER_FILE"
  local s p
  for s in "${NODE_SYSCTLS[@]}"; do
    p="/proc/sys/${s//.//}"
    [[ -r "$p" ]] && printf '%s=%s\n' "$s" "$(cat "$p")"
  done > "$NODE_DIR/sysctls.before"
  for p in "${NODE_HOST_PATHS[@]}"; do [[ -e "$p" ]] || echo "$p"; done > "$NODE_DIR/host-paths.created"
  # iptables-nft creates its tables on first use; the ones that did not
  # exist before are dropped again on down.
  nft list tables > "$NODE_DIR/nft-tables.before"
  ip link add "$NODE_BRIDGE" type bridge || node_fail bridge "could not be created (ip link add $NODE_BRIDGE type bridge)"
  echo "$NODE_BRIDGE" > "$NODE_DIR/bridge"
  # No IPv6 on the pod network: nothing to route or leak there.
  sysctl -qw "net.ipv6.conf.$NODE_BRIDGE.disable_ipv6=1" 2>/dev/null || true
  ip addr add "$NODE_IP/${NODE_SUBNET#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # Forwarding on the bridge alone (pod -> node address -> pod after the
  # Service DNAT); net.ipv4.ip_forward stays as it was.
  sysctl -qw "net.ipv4.conf.$NODE_BRIDGE.forwarding=1"
  # Service addresses are answered by kube-proxy's DNAT towards pods on the
  # bridge; without this route the machine would send them to its default gateway.
  ip route add "$SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"
  local ipt table
  # The guard in filter and again in mangle, which runs first: kube-router
  # rewrites the filter table and puts its own ACCEPT rules ahead of ours on
  # every sync; it never touches mangle.
  { ipset list -n 2>/dev/null || true; } | sort > "$NODE_DIR/ipsets.before"
  for ipt in iptables ip6tables; do
    for table in filter mangle; do
      "$ipt" -t "$table" -N STATELESS-FORWARD-GUARD
      "$ipt" -t "$table" -A STATELESS-FORWARD-GUARD -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" -j DROP
      "$ipt" -t "$table" -A STATELESS-FORWARD-GUARD -o "$NODE_BRIDGE" ! -i "$NODE_BRIDGE" -j DROP
      "$ipt" -t "$table" -I FORWARD 1 -j STATELESS-FORWARD-GUARD
    done
  done
  iptables -N STATELESS-OUTPUT-GUARD
  iptables -A STATELESS-OUTPUT-GUARD -d "$KWOK_POD_CIDR" -j REJECT
  iptables -I OUTPUT 1 -j STATELESS-OUTPUT-GUARD
}

# ---------------------------------------------------------------------------
# Components.

node_pki() {
  cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  cert kube-proxy "/CN=system:kube-proxy"
  cert coredns "/CN=stateless-local:coredns"
  # Serving certificates signed by the plane's CA, so that clients of the
  # kubelet (metrics-server) and of metrics-server (the API server's
  # aggregation layer) verify them instead of skipping TLS verification.
  cert kubelet-serving "/CN=$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
  cert metrics-server "/CN=metrics-server.kube-system.svc" \
    "IP:$NODE_IP,DNS:metrics-server.kube-system.svc,DNS:metrics-server.kube-system.svc.cluster.local"
  # Its identity towards the API server and kubelets: reading nodes, pods and
  # the kubelets' resource metrics, delegating authn/authz (admin for brevity
  # on a throwaway local plane).
  cert metrics-server-client "/O=system:masters/CN=stateless-local:metrics-server"
  # kube-router watches pods, namespaces, policies, nodes, services and
  # endpoints (admin for brevity here as well).
  cert kube-router "/O=system:masters/CN=stateless-local:kube-router"
}

node_write_configs() {
  local api_url="$1" cfg="$NODE_DIR/config"
  mkdir -p "$cfg" "$NODE_DIR/cni/net.d" "$NODE_DIR/containerd/certs.d/_default" "$NODE_DIR/kubelet" \
    "$NODE_DIR/pod-logs" "$NODE_DIR/volume-plugins"
  write_kubeconfig "$cfg/kubelet.kubeconfig" kubelet "$api_url"
  write_kubeconfig "$cfg/kube-proxy.kubeconfig" kube-proxy "$api_url"
  write_kubeconfig "$cfg/coredns.kubeconfig" coredns "$api_url"
  write_kubeconfig "$cfg/metrics-server.kubeconfig" metrics-server-client "$api_url"
  write_kubeconfig "$cfg/kube-router.kubeconfig" kube-router "$api_url"
  local sock="$NODE_DIR/containerd/containerd.sock"
  echo "$sock" > "$NODE_DIR/containerd.address"

  cat > "$cfg/containerd.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$NODE_DIR/containerd/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # root here lacks CAP_SYS_RESOURCE: runc must not raise oom_score_adj.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$NODE_DIR/containerd/certs.d"
EOF
  # Every registry resolves to a closed loopback port: no pull leaves the machine.
  cat > "$NODE_DIR/containerd/certs.d/_default/hosts.toml" <<'EOF'
server = "http://127.0.0.1:9"
[host."http://127.0.0.1:9"]
  capabilities = ["pull", "resolve"]
EOF

  cat > "$NODE_DIR/cni/net.d/10-stateless.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "stateless-real-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": false,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{"subnet": "$NODE_SUBNET", "rangeStart": "10.88.0.10", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR", "gw": "$NODE_IP"}]
      }
    }
  ]
}
EOF

  # Pods resolve Service names through CoreDNS on the node address only; the
  # machine's own resolvers are not inherited.
  : > "$cfg/resolv.conf"
  cat > "$cfg/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$sock
address: $NODE_IP
port: $(free_port)
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(free_port)
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: $cfg/resolv.conf
podLogsDir: $NODE_DIR/pod-logs
volumePluginDir: $NODE_DIR/volume-plugins
registerWithTaints:
- {key: $NODE_LABEL, value: "true", effect: NoSchedule}
maxPods: 40
failSwapOn: false
# Images come from hack/images.sh and are never pulled: keep them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
serializeImagePulls: false
containerLogMaxSize: 5Mi
shutdownGracePeriod: 0s
EOF

  cat > "$cfg/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $cfg/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $NODE_SUBNET
healthzBindAddress: 127.0.0.1:$(free_port)
metricsBindAddress: 127.0.0.1:$(free_port)
nodePortAddresses: [$NODE_IP/32]
iptables:
  # Pod -> Service -> pod on the same bridge: the reply must come back through
  # the node to be un-NATed, without bridge netfilter (a machine-wide switch).
  masqueradeAll: true
  localhostNodePorts: false
# Zero: leave the machine's conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF

  cat > "$cfg/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:$(free_port)
    ready 127.0.0.1:$(free_port)
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $cfg/coredns.kubeconfig local
        pods insecure
    }
    cache 10
}
EOF
}

node_rbac() {
  kubectl_ apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "stateless-local:coredns"}
rules:
- apiGroups: [""]
  resources: [services, namespaces, endpoints, pods]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "stateless-local:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "stateless-local:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "stateless-local:coredns"}
EOF
}

node_up() {
  local api_url="$1" cfg="$NODE_DIR/config"
  local t0=$SECONDS
  node_write_configs "$api_url"
  local sock; sock=$(cat "$NODE_DIR/containerd.address")

  start containerd "$(command -v containerd)" --config "$cfg/containerd.toml" --log-level info
  wait_for containerd 30 ctr --address "$sock" version
  "$HACK_DIR/images.sh" import --address "$sock" pause >"$LOGS/images.log" 2>&1 \
    || { tail -n 20 "$LOGS/images.log" >&2; node_fail images "could not build or import the pause image (log: $LOGS/images.log)"; }

  node_rbac
  start coredns "$NODE_BIN/coredns" -conf "$cfg/Corefile"
  wait_for coredns 30 bash -c "exec 3<>/dev/tcp/$NODE_IP/53"

  # shellcheck disable=SC2086 # STATELESS_KUBELET_ARGS is split on purpose
  start kubelet "$NODE_BIN/kubelet" --config "$cfg/kubelet.yaml" \
    --kubeconfig "$cfg/kubelet.kubeconfig" --root-dir "$NODE_DIR/kubelet" --cert-dir "$NODE_DIR/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels "$NODE_LABEL=true,type=real" --v 1 ${STATELESS_KUBELET_ARGS:-}
  start kube-proxy "$NODE_BIN/kube-proxy" --config "$cfg/kube-proxy.yaml" --v 1
  wait_for kubelet 90 kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
  alive kube-proxy || node_fail kube-proxy "exited during start-up"
  # kube-proxy has programmed the Service rules once the API server's own
  # Service is in its chains.
  wait_for kube-proxy 60 bash -c "iptables-save -t nat | grep -q 'default/kubernetes:https'"
  node_kube_router_up
  node_metrics_server_up
  [[ "$(cat /proc/sys/net/ipv4/ip_forward)" == "$(awk -F= '$1=="net.ipv4.ip_forward"{print $2}' "$NODE_DIR/sysctls.before")" ]] \
    || node_fail kubelet "changed net.ipv4.ip_forward, which must stay as it was"
  log "real node $NODE_NAME Ready in $((SECONDS - t0))s (containerd, kubelet, kube-proxy, kube-router firewall, CoreDNS on $NODE_IP)"
}

# kube-router with its firewall alone (no routing, no service proxy, no CNI):
# the bridge CNI does not enforce NetworkPolicy, kube-router does, with
# iptables and ipsets for the pods on this node. Its health and metrics
# listen on loopback only (the health port would bind every interface).
node_kube_router_up() {
  local port; port=$(free_port)
  NODE_NAME="$NODE_NAME" start kube-router "$KUBE_ROUTER_BIN/kube-router" \
    --run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
    --enable-cni=false --enable-ipv4=true --enable-ipv6=false \
    --kubeconfig "$NODE_DIR/config/kube-router.kubeconfig" --hostname-override "$NODE_NAME" \
    --service-cluster-ip-range "$SERVICE_CIDR" --iptables-sync-period 1m --cache-sync-timeout 1m \
    --health-port 0 --metrics-addr 127.0.0.1 --metrics-port "$port" --v 1
  wait_for kube-router 60 iptables -S KUBE-ROUTER-FORWARD
}

# metrics-server on the node address, registered as the metrics.k8s.io API
# through a Service without selector whose endpoint is that address (the
# API server routes to the endpoint itself: --enable-aggregator-routing).
# It scrapes the real kubelet only; kwok nodes have no kubelet to scrape.
node_metrics_server_up() {
  local cfg="$NODE_DIR/config" port; port=$(free_port)
  start metrics-server "$METRICS_SERVER_BIN/metrics-server" \
    --bind-address "$NODE_IP" --secure-port "$port" \
    --tls-cert-file "$PKI/metrics-server.crt" --tls-private-key-file "$PKI/metrics-server.key" \
    --kubeconfig "$cfg/metrics-server.kubeconfig" \
    --authentication-kubeconfig "$cfg/metrics-server.kubeconfig" \
    --authorization-kubeconfig "$cfg/metrics-server.kubeconfig" \
    --kubelet-preferred-address-types InternalIP --kubelet-use-node-status-port \
    --kubelet-certificate-authority "$PKI/ca.crt" \
    --node-selector "$NODE_LABEL=true" --metric-resolution 15s --v 1
  local ca; ca=$(base64 -w0 < "$PKI/ca.crt")
  kubectl_ apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system, labels: {app.kubernetes.io/part-of: stateless-local-plane}}
spec:
  ports: [{name: https, port: 443, targetPort: $port, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: metrics-server-node
  namespace: kube-system
  labels: {kubernetes.io/service-name: metrics-server, endpointslice.kubernetes.io/managed-by: stateless-local-plane}
addressType: IPv4
ports: [{name: https, port: $port, protocol: TCP}]
endpoints: [{addresses: ["$NODE_IP"], conditions: {ready: true}}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: {name: metrics-server, namespace: kube-system, port: 443}
  caBundle: $ca
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
  # Served once the aggregation layer reaches it; the node's first figures
  # follow two scrapes later, which nothing here needs to wait for.
  wait_for metrics-server 60 kubectl_ get --raw /apis/metrics.k8s.io/v1beta1
}

# ---------------------------------------------------------------------------
# Tear-down: by PID for processes, by record for host state. Each step runs
# even when an earlier one failed, so a half-started node is removed too.

# Processes started by a containerd of this run: shims outlive containerd.
node_shim_pids() {
  local root="$1" p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -- "$root/containerd" >/dev/null && echo "${p#/proc/}"
  done
  return 0
}

# Unmount everything mounted at or below <dir>, deepest first.
unmount_under() {
  local m
  awk -v d="$1" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while IFS= read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

node_teardown_host() {
  local dir="$1/node" p pid
  # Shims and the containers under them.
  for pid in $(node_shim_pids "$dir"); do kill -KILL "$pid" 2>/dev/null || true; done
  local c
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d "$c" ]] || continue
    # Kill what is left in the pods' cgroups, then remove them deepest first.
    find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
  done
  sleep 0.2
  # Mounts under the run dir and the pod network namespaces, deepest first.
  unmount_under "$dir"
  if [[ -d /run/netns ]]; then
    for p in /run/netns/cni-*; do
      [[ -e "$p" ]] || continue
      ip netns delete "${p##*/}" 2>/dev/null || { umount -l "$p" 2>/dev/null; rm -f "$p"; }
    done
  fi
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d "$c" ]] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  # Rules: kube-proxy's own clean-up first, then every chain and rule of
  # ours (KUBE-*, CNI-*, STATELESS-*) with the rest of each table restored as is.
  [[ -x "$NODE_BIN/kube-proxy" ]] && "$NODE_BIN/kube-proxy" --cleanup >/dev/null 2>&1
  local ipt
  for ipt in iptables ip6tables; do
    command -v "$ipt-save" >/dev/null 2>&1 || continue
    if "$ipt-save" | grep -E "$NODE_CHAIN_RE" >/dev/null; then
      "$ipt-save" | grep -vE "$NODE_CHAIN_RE" | "$ipt-restore" || log "warning: $ipt-restore failed; check $ipt-save"
    fi
  done
  # kube-router's ipsets, once no rule refers to them.
  if command -v ipset >/dev/null 2>&1; then
    local set
    { ipset list -n 2>/dev/null || true; } | { grep -E "$NODE_IPSET_RE" || true; } | while IFS= read -r set; do
      grep -qxF "$set" "$dir/ipsets.before" 2>/dev/null || ipset destroy "$set" 2>/dev/null || true
    done
  fi
  # Tables that appeared during the run (iptables-nft's filter and nat, say)
  # held only the node's rules: drop them, so the ruleset is as before.
  if [[ -f "$dir/nft-tables.before" ]] && command -v nft >/dev/null 2>&1; then
    local table
    nft list tables | while IFS= read -r table; do
      grep -qxF "$table" "$dir/nft-tables.before" || nft delete "${table}" 2>/dev/null || true
    done
  fi
  # Conntrack entries of the pod network would otherwise linger.
  # (conntrack -D exits 1 when there was nothing to delete.)
  if command -v conntrack >/dev/null 2>&1; then conntrack -D -s "$NODE_SUBNET" >/dev/null 2>&1 || true; fi
  local br="${2:-$NODE_BRIDGE}"; [[ -f "$dir/bridge" ]] && br=$(cat "$dir/bridge")
  ip link show "$br" >/dev/null 2>&1 && ip link delete "$br"
  # Leftover veths of pods whose network namespace is gone die with it;
  # sysctls back to what they were.
  if [[ -f "$dir/sysctls.before" ]]; then
    local kv
    while IFS= read -r kv; do sysctl -qw "$kv" 2>/dev/null || true; done < "$dir/sysctls.before"
  fi
  if [[ -f "$dir/host-paths.created" ]]; then
    while IFS= read -r p; do
      [[ -n "$p" && -e "$p" ]] || continue
      unmount_under "$p"
      rm -rf "$p"
    done < "$dir/host-paths.created"
  fi
}

node_down() {
  [[ -d "$NODE_DIR" || -f "$NODE_OWNER_FILE" && "$(sed -n 1p "$NODE_OWNER_FILE" 2>/dev/null)" == "$RUN_DIR" ]] || return 0
  local c
  # In order, kubelet before containerd, so it does not restart what is being stopped.
  for c in "${NODE_COMPONENTS[@]}"; do
    alive "$c" || continue
    stop_group "$(pid_of "$c")"
  done
  node_teardown_host "$RUN_DIR"
  [[ "$(sed -n 1p "$NODE_OWNER_FILE" 2>/dev/null)" == "$RUN_DIR" ]] && rm -f "$NODE_OWNER_FILE"
  return 0
}
