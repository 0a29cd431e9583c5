#!/usr/bin/env bash
# A real, local Kubernetes control plane on loopback, for tests and the demo.
#
#   hack/cluster.sh up          start (or reuse a healthy) plane; builds binaries if missing
#   hack/cluster.sh down        stop exactly the processes `up` started, remove run state
#   hack/cluster.sh status      say what runs
#   hack/cluster.sh kubeconfig  print the admin kubeconfig path
#   hack/cluster.sh load-images NAME...  build (if changed) and import images
#                               into the real node, like `kind load docker-image`
#   hack/cluster.sh restart COMPONENT [--down SECONDS]
#                               stop one component (SIGTERM by PID, as `down`
#                               does), keep it stopped SECONDS (default 0),
#                               start it with the same command line, wait until
#                               it is healthy, print how long it was unavailable
#
# Components: etcd, kube-apiserver (RBAC+Node authz, client-cert admin, SA
# issuer/keys, audit log of writes), kube-controller-manager, kube-scheduler
# and kwok managing 3 fake nodes, so Pods get scheduled and become Ready
# without a container runtime. Every port is picked free at start.
#
# Unless STATELESS_REAL_NODE=0, one real node joins them (hack/node.sh):
# kubelet, containerd, kube-proxy and CoreDNS on a bridge of its own, so
# containers really run. It is tainted stateless.dev/real-node=true:NoSchedule;
# a namespace annotated for it (see README, "The real node") sends its pods
# there. With the real node the API server listens on the node address, which
# pods reach; without it, on 127.0.0.1.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HACK_DIR/node.sh"

PKI="$RUN_DIR/pki"
LOGS="$RUN_DIR/logs"
PIDS="$RUN_DIR/pids"
# Each component's command line, NUL-separated, as `start` ran it: `restart`
# runs exactly that again.
ARGV="$RUN_DIR/argv"
STATE="$RUN_DIR/state.env"
KUBECONFIG_PATH="$RUN_DIR/kubeconfig"
AUDIT_LOG="$RUN_DIR/audit.log"
# Fake (kwok) nodes, 110 pods each; the benchmark asks for more.
NODES="${STATELESS_KWOK_NODES:-3}"
# The order matters for `down`: stop consumers before the store.
COMPONENTS=(kwok kube-scheduler kube-controller-manager kube-apiserver etcd)
# Processes that hack/demo.sh runs against the plane; `down` stops them first.
EXTRAS=(operator)

kubectl_() { "$KUBECTL_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

pid_of() { [[ -f "$PIDS/$1.pid" ]] && cat "$PIDS/$1.pid"; }
# Alive and still one of our binaries: a PID from a crashed run may have been
# reused by an unrelated process, which must never be signalled.
alive() {
  local pid exe
  pid=$(pid_of "$1") && [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  case "$1" in
    operator) [[ "$exe" == */stateless-operator ]] ;;
    containerd) [[ "$exe" == */containerd ]] ;;
    *) [[ "$exe" == "$CACHE_ROOT"/* ]] ;;
  esac
}

# A port nobody listens on now, below the kernel's ephemeral range: a port
# from inside it can be taken as the source port of any outgoing connection
# (the plane's own, to the API server) between now and the bind, which then
# fails with "address already in use" (seen for kube-router's metrics port).
# Start-up still checks each component actually came up.
free_port() {
  local p tries=0 ephemeral_low=32768 lo=20000 hi
  read -r ephemeral_low _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  hi=$(( ephemeral_low - 1 ))
  (( hi - lo >= 2000 )) || { lo=10000; hi=$(( ephemeral_low - 1 )); }
  (( hi - lo >= 2000 )) || die "the ephemeral port range starts at $ephemeral_low: no room below it for the plane's ports"
  while (( tries++ < 200 )); do
    p=$(( lo + RANDOM % (hi - lo + 1) ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! grep -qx "$p" "$RUN_DIR/.ports" 2>/dev/null; then
      echo "$p" >> "$RUN_DIR/.ports"
      echo "$p"; return 0
    fi
  done
  die "no free port found on 127.0.0.1"
}

start() { # start <component> <binary> args...
  local name="$1" bin="$2"; shift 2
  [[ -x "$bin" ]] || die "$name: binary $bin missing (run hack/tools.sh)"
  mkdir -p "$ARGV"
  printf '%s\0' "$bin" "$@" > "$ARGV/$name"
  # setsid: own process group, so `down` can stop the component and anything it forked.
  # Appending keeps the log of the run before a `restart`.
  setsid "$bin" "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  local pid=$! real i
  echo "$pid" > "$PIDS/$name.pid"
  # Until the forked shell has exec'd the binary, /proc/PID/exe is bash and
  # `alive` would call a healthy component dead: wait for the exec (or its death).
  real=$(readlink -f "$bin")
  for ((i = 0; i < 100; i++)); do
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$real" ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
}

# stop_group <pid>: SIGTERM to the process group `start` made, up to 10 s
# for it to exit, then SIGKILL.
stop_group() {
  local pid="$1" deadline=$(( SECONDS + 10 ))
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.05; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

fail_component() {
  local name="$1" why="$2"
  printf 'error: %s %s; last lines of %s:\n' "$name" "$why" "$LOGS/$name.log" >&2
  tail -n 20 "$LOGS/$name.log" >&2 || true
  # Keep the logs for the post-mortem, stop everything else.
  rm -rf "$CACHE_ROOT/logs/last-failed-plane"
  cp -r "$LOGS" "$CACHE_ROOT/logs/last-failed-plane" 2>/dev/null || true
  printf 'logs kept in %s\n' "$CACHE_ROOT/logs/last-failed-plane" >&2
  do_down >/dev/null 2>&1 || true
  exit 1
}

# Every node Ready, from one list (`kubectl wait --all` takes longer than its
# own timeout once there are dozens of nodes).
fake_nodes_ready() {
  local states
  states="$(kubectl_ get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')" || return 1
  [[ -n "$states" ]] && ! grep -qv '^True$' <<<"$states"
}

wait_for() { # wait_for <component> <seconds> <command...>
  local name="$1" secs="$2"; shift 2
  local deadline=$(( SECONDS + secs ))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || fail_component "$name" "exited during start-up"
    (( SECONDS < deadline )) || fail_component "$name" "not healthy after ${secs}s"
    sleep 0.2
  done
}

gen_pki() {
  mkdir -p "$PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=stateless-operator-local-ca" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
  # cert <name> <subject> [SAN] [signing CA, default ca]
  cert() {
    local ext="$PKI/$1.ext" ca="${4:-ca}"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n' \
      "${3:+serverAuth,}clientAuth" > "$ext"
    [[ -n "${3:-}" ]] && printf 'subjectAltName=%s\n' "$3" >> "$ext"
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$PKI/$1.key" -out "$PKI/$1.csr" 2>/dev/null
    openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
      -days 30 -extfile "$ext" -out "$PKI/$1.crt" 2>/dev/null
  }
  cert apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:10.96.0.1,IP:$NODE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=admin"
  cert kube-controller-manager "/CN=system:kube-controller-manager"
  cert kube-scheduler "/CN=system:kube-scheduler"
  cert kwok "/O=system:masters/CN=kwok"
  # The API server's identity towards kubelets (logs, exec, port-forward).
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  # The aggregation layer (metrics-server): a CA of its own, so that its
  # client certificates are never taken for users' ones.
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=stateless-operator-front-proxy-ca" \
    -keyout "$PKI/front-proxy-ca.key" -out "$PKI/front-proxy-ca.crt" 2>/dev/null
  cert front-proxy-client "/CN=front-proxy-client" "" front-proxy-ca
  if real_node_enabled; then node_pki; fi
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}

write_kubeconfig() { # write_kubeconfig <file> <cert-name> <server>
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $3
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: local
  context: {cluster: local, user: $2}
current-context: local
EOF
}

# The components of the plane in this run dir: the node's too when it has one.
components() {
  if [[ -f "$STATE" ]] && grep -q '^REAL_NODE=' "$STATE"; then echo "${NODE_COMPONENTS[@]}"; fi
  echo "${COMPONENTS[@]}"
}

healthy() {
  [[ -f "$STATE" ]] || return 1
  local c; for c in $(components); do alive "$c" || return 1; done
  kubectl_ get --raw /readyz >/dev/null 2>&1
}

do_down() {
  local c pid stopped=()
  # The node goes first: kubelet must not restart containers while the
  # plane stops, and its host state (bridge, rules, mounts) is removed even
  # when the run dir is all that is left of a crashed run.
  node_down
  [[ -d "$PIDS" ]] || { rm -rf --one-file-system "$RUN_DIR"; return 0; }
  for c in "${EXTRAS[@]}" "${COMPONENTS[@]}"; do
    alive "$c" || continue
    pid=$(pid_of "$c")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    stopped+=("$c:$pid")
  done
  # Give them a moment to exit cleanly, then make sure.
  local deadline=$(( SECONDS + 10 )) entry
  for entry in "${stopped[@]}"; do
    pid="${entry#*:}"
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf --one-file-system "$RUN_DIR"
  ((${#stopped[@]})) && log "stopped ${stopped[*]}"
  return 0
}

do_up() {
  if healthy; then
    log "control plane already running: $(grep API_URL "$STATE" | cut -d= -f2)"
    return 0
  fi
  if [[ -d "$RUN_DIR" ]]; then
    log "found a stale plane from an earlier run in $RUN_DIR; cleaning it up"
    do_down
  fi
  # What can be refused (not root, no packages, the bridge taken) is refused
  # before anything is built or started.
  if real_node_enabled; then node_preflight; fi
  "$HACK_DIR/tools.sh"
  local t0=$SECONDS bind_ip=127.0.0.1 node_flags=()
  mkdir -p "$LOGS" "$PIDS"
  : > "$RUN_DIR/.ports"
  trap 'printf "interrupted; stopping the plane\n" >&2; do_down; exit 130' INT TERM
  gen_pki
  if real_node_enabled; then
    node_network_up
    bind_ip="$NODE_IP"
    # shellcheck disable=SC2054 # one flag and its comma-separated value
    node_flags=(--kubelet-preferred-address-types InternalIP,Hostname)
  fi

  local etcd_port etcd_peer api_port
  etcd_port=$(free_port); etcd_peer=$(free_port); api_port=$(free_port)
  local api_url="https://$bind_ip:$api_port"

  start etcd "$ETCD_BIN/etcd" --name local --data-dir "$RUN_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "local=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync --log-level warn
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health"

  cat > "$RUN_DIR/audit-policy.yaml" <<'EOF'
# Writes only, at Metadata level: enough to count who wrote what (the
# requestURI carries the fieldManager) without logging any request body.
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
EOF
  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$bind_ip" --advertise-address "$bind_ip" --secure-port "$api_port" \
    --cert-dir "$PKI" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --authorization-mode Node,RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" "${node_flags[@]}" \
    --enable-admission-plugins PodNodeSelector,PodTolerationRestriction \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --audit-policy-file "$RUN_DIR/audit-policy.yaml" --audit-log-path "$AUDIT_LOG" \
    --audit-log-format json --audit-log-mode blocking --audit-log-maxsize 1000000 \
    --profiling=false --v 1
  write_kubeconfig "$KUBECONFIG_PATH" admin "$api_url"
  wait_for kube-apiserver 90 kubectl_ get --raw /readyz

  write_kubeconfig "$RUN_DIR/kube-controller-manager.kubeconfig" kube-controller-manager "$api_url"
  # HPA sync every 5s (default 15s) so tests see HPA-driven scaling sooner.
  start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$RUN_DIR/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$RUN_DIR/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$RUN_DIR/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$(free_port)" --cert-dir "$PKI/kcm" \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials=true --leader-elect=false --controllers '*' \
    --horizontal-pod-autoscaler-sync-period 5s --v 1

  write_kubeconfig "$RUN_DIR/kube-scheduler.kubeconfig" kube-scheduler "$api_url"
  start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$RUN_DIR/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$RUN_DIR/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$RUN_DIR/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$(free_port)" --cert-dir "$PKI/scheduler" \
    --leader-elect=false --v 1

  write_kubeconfig "$RUN_DIR/kwok.kubeconfig" kwok "$api_url"
  start kwok "$KWOK_BIN/kwok" --kubeconfig "$RUN_DIR/kwok.kubeconfig" --config "$KWOK_BIN/stages.yaml" \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --cidr 10.244.0.0/16 --node-ip 127.0.0.1 --server-address "127.0.0.1:$(free_port)"

  cat > "$STATE" <<EOF
API_URL=$api_url
ETCD_URL=http://127.0.0.1:$etcd_port
KUBECONFIG=$KUBECONFIG_PATH
AUDIT_LOG=$AUDIT_LOG
EOF

  local i
  for i in $(seq 1 "$NODES"); do
    cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
---
EOF
  done > "$RUN_DIR/nodes.yaml"
  kubectl_ apply -f "$RUN_DIR/nodes.yaml" >/dev/null
  local c
  for c in kube-controller-manager kube-scheduler kwok; do alive "$c" || fail_component "$c" "exited during start-up"; done
  wait_for kwok 60 fake_nodes_ready
  # The default ServiceAccount must exist before Pods can be created in a namespace.
  wait_for kube-controller-manager 60 kubectl_ get serviceaccount default -n default
  if real_node_enabled; then
    node_up "$api_url"
    cat >> "$STATE" <<EOF
REAL_NODE=$NODE_NAME
CONTAINERD_ADDRESS=$(cat "$NODE_DIR/containerd.address")
EOF
  fi
  trap - INT TERM
  log "control plane up in $((SECONDS - t0))s: $api_url"
  log "kubeconfig: $KUBECONFIG_PATH"
}

do_status() {
  if [[ ! -f "$STATE" ]]; then echo "no control plane running (run dir: $RUN_DIR)"; return 1; fi
  local c rc=0
  for c in $(components); do
    if alive "$c"; then printf '%-24s running (pid %s)\n' "$c" "$(pid_of "$c")"
    else printf '%-24s NOT running (log: %s)\n' "$c" "$LOGS/$c.log"; rc=1; fi
  done
  cat "$STATE"
  if kubectl_ get --raw /readyz >/dev/null 2>&1; then echo "API: ready"; else echo "API: not ready"; rc=1; fi
  return $rc
}

# The value of flag $1 in a stored command line (the rest of the arguments).
argv_flag() {
  local flag="$1"; shift
  while (($#)); do [[ "$1" == "$flag" ]] && { echo "${2:-}"; return 0; }; shift; done
  return 1
}

# Does the restarted component answer its own health check? Components
# without one count as healthy while they run.
component_healthy() { # component_healthy <component> argv...
  local name="$1" cfg="$NODE_DIR/config"; shift
  alive "$name" || return 1
  case "$name" in
    etcd) curl -fsS "$(sed -n 's/^ETCD_URL=//p' "$STATE")/health" ;;
    kube-apiserver) kubectl_ get --raw /readyz ;;
    kube-controller-manager|kube-scheduler) curl -kfsS "https://127.0.0.1:$(argv_flag --secure-port "$@")/healthz" ;;
    kubelet) curl -fsS "http://127.0.0.1:$(sed -n 's/^healthzPort: //p' "$cfg/kubelet.yaml")/healthz" ;;
    kube-proxy) curl -fsS "http://$(sed -n 's/^healthzBindAddress: //p' "$cfg/kube-proxy.yaml")/healthz" ;;
    coredns) curl -fsS "http://$(sed -n 's/^ *ready //p' "$cfg/Corefile")/ready" ;;
    containerd) ctr --address "$(cat "$NODE_DIR/containerd.address")" version ;;
    *) true ;;
  esac
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# Stop one component exactly like `down` does, start it again with the stored
# command line, wait until healthy. Unlike start-up, a failure here leaves the
# rest of the plane running: it says what failed and how to look.
do_restart() {
  local name="${1:-}" down_for=0
  [[ -n "$name" ]] || die "usage: $0 restart COMPONENT [--down SECONDS]"
  shift
  while (($#)); do
    case "$1" in
      --down) down_for="${2:-}"; shift 2 ;;
      *) die "restart: unknown argument $1 (usage: $0 restart COMPONENT [--down SECONDS])" ;;
    esac
  done
  [[ "$down_for" =~ ^[0-9]+$ ]] || die "restart: --down takes whole seconds, got '$down_for'"
  [[ -f "$STATE" ]] || die "no control plane running in $RUN_DIR; start one with hack/cluster.sh up"
  [[ " $(components | tr '\n' ' ') " == *" $name "* ]] || die "restart: no component $name in this plane (components: $(components | tr '\n' ' '))"
  [[ -f "$ARGV/$name" ]] || die "restart: $name was started before its command line was recorded; restart the plane (down, up) once"
  local argv=() pid t_stop t_stopped t_start t_ready
  mapfile -d '' argv < "$ARGV/$name"
  pid=$(pid_of "$name")
  t_stop=$(now)
  if alive "$name"; then
    # The same grace as `down`: kube-apiserver stops listening at once but
    # waits up to its request timeout (60 s) for open connections to drain.
    stop_group "$pid"
  else
    log "restart: $name was not running (log: $LOGS/$name.log); starting it"
  fi
  t_stopped=$(now)
  # Interrupted while it is down: bring it back rather than leave a plane without it.
  trap 'start "$name" "${argv[@]}"; exit 130' INT TERM
  (( down_for == 0 )) || sleep "$down_for"
  t_start=$(now)
  start "$name" "${argv[@]}"
  trap - INT TERM
  deadline=$(( SECONDS + 90 ))
  until component_healthy "$name" "${argv[@]:1}" >/dev/null 2>&1; do
    if ! alive "$name"; then
      printf 'error: %s exited after its restart; last lines of %s:\n' "$name" "$LOGS/$name.log" >&2
      tail -n 20 "$LOGS/$name.log" >&2 || true
      exit 1
    fi
    (( SECONDS < deadline )) || die "$name not healthy 90s after its restart (log: $LOGS/$name.log)"
    sleep 0.1
  done
  t_ready=$(now)
  log "restarted $name (pid $pid -> $(pid_of "$name")): stopped in $(elapsed "$t_stop" "$t_stopped")s, down ${down_for}s, healthy $(elapsed "$t_start" "$t_ready")s after start"
  # One line on stdout for scripts and tests.
  echo "$name unavailable for $(elapsed "$t_stop" "$t_ready")s"
}

case "${1:-}" in
  up) do_up ;;
  down) do_down ;;
  status) do_status ;;
  kubeconfig) [[ -f "$STATE" ]] || die "no control plane running; start one with hack/cluster.sh up"; echo "$KUBECONFIG_PATH" ;;
  load-images)
    shift
    grep -q '^CONTAINERD_ADDRESS=' "$STATE" 2>/dev/null \
      || die "no real node in this plane (run dir $RUN_DIR); start it with hack/cluster.sh up (without STATELESS_REAL_NODE=0)"
    "$HACK_DIR/images.sh" import --address "$(sed -n 's/^CONTAINERD_ADDRESS=//p' "$STATE")" "$@" ;;
  restart) shift; do_restart "$@" ;;
  *) echo "usage: $0 up|down|status|kubeconfig|load-images NAME...|restart COMPONENT [--down SECONDS]" >&2; exit 2 ;;
esac
