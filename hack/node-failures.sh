#!/usr/bin/env bash
# The real node's failure paths, for real: each refused or failed start gives
# a clear error naming the cause (and the component's log), and leaves the
# machine exactly as it was; a node left by a crashed run is cleaned by the
# next `up`. Run by hack/test.sh before its own plane starts (the real node is
# one per machine).
#
#   hack/node-failures.sh
#
# What "as it was" means here: the interfaces, routes, iptables and ip6tables
# rules, nftables tables, mounts, the sysctls kubelet writes, the fixed host
# paths, and no process of the plane or the node left.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$HACK_DIR/node.sh"
cd "$REPO_ROOT"

[[ "${STATELESS_REAL_NODE:-1}" != 0 ]] || die "node-failures: STATELESS_REAL_NODE=0, there is no real node to test"
BASE_RUN_DIR="$CACHE_ROOT/run-node-failures-$$"
CLUSTER="$HACK_DIR/cluster.sh"
passed=0

snapshot() {
  ip -br link | awk '{print $1}'
  ip route; ip -6 route
  iptables-save | grep -v '^#'
  ip6tables-save | grep -v '^#'
  nft list tables
  awk '{print $5}' /proc/self/mountinfo | sort
  local s p
  for s in "${NODE_SYSCTLS[@]}"; do p="/proc/sys/${s//.//}"; [[ -r "$p" ]] && echo "$s=$(cat "$p")"; done
  for p in "${NODE_HOST_PATHS[@]}"; do [[ -e "$p" ]] && echo "exists $p"; done
  # Processes of any plane or node: our binaries, containerd and its shims.
  for p in /proc/[0-9]*; do
    readlink "$p/exe" 2>/dev/null
  done | grep -E "^$CACHE_ROOT/|/containerd(-shim[^/]*)?$|/runc$" | sort | uniq -c
  return 0
}

BEFORE="$(snapshot)"
same_as_before() { # same_as_before <case>
  local now; now="$(snapshot)"
  if [[ "$now" != "$BEFORE" ]]; then
    diff <(echo "$BEFORE") <(echo "$now") >&2 || true
    die "node-failures: $1: the machine is not as it was before (diff above)"
  fi
}

# expect_failure <case> <pattern> <command...>: the command fails and says <pattern>.
expect_failure() {
  local name="$1" pattern="$2" out; shift 2
  log "node-failures: $name"
  if out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2; die "node-failures: $name: expected a failure, got success"
  fi
  grep -qE -- "$pattern" <<<"$out" || { printf '%s\n' "$out" >&2; die "node-failures: $name: the error does not say /$pattern/"; }
  printf '    %s\n' "$(grep -E -- "$pattern" <<<"$out" | head -n1)" >&2
  same_as_before "$name"
  passed=$((passed + 1))
}

cleanup() {
  local d
  for d in "$BASE_RUN_DIR"-*; do [[ -d "$d" ]] && STATELESS_RUN_DIR="$d" "$CLUSTER" down >/dev/null 2>&1; done
  ip link show sotest0 >/dev/null 2>&1 && ip link delete sotest0
  return 0
}
trap cleanup EXIT

# 1. Not root: refused before anything is built, started or changed.
if command -v setpriv >/dev/null 2>&1; then
  nobody_cache="$(mktemp -d)"; chmod 0777 "$nobody_cache"
  expect_failure "not root" "real node: needs root" \
    setpriv --reuid=65534 --regid=65534 --clear-groups env STATELESS_CACHE_DIR="$nobody_cache" "$CLUSTER" up
  rm -rf "$nobody_cache"
fi

# 2. The bridge name is taken by an interface that is not ours.
ip link add sotest0 type bridge
BEFORE="$(snapshot)"
expect_failure "bridge name taken" "interface named sotest0 exists" \
  env STATELESS_BRIDGE=sotest0 STATELESS_RUN_DIR="$BASE_RUN_DIR-bridge" "$CLUSTER" up

# 2b. The same, while a crashed plane whose run dir is gone still owns the
#     node: its clean-up removes its own bridge (recorded with the owner), never
#     the interface named by this run's STATELESS_BRIDGE.
printf '%s\n%s\n' "$BASE_RUN_DIR-gone" sobr0 > "$NODE_OWNER_FILE"
expect_failure "bridge name taken, a crashed plane's run dir gone" "interface named sotest0 exists" \
  env STATELESS_BRIDGE=sotest0 STATELESS_RUN_DIR="$BASE_RUN_DIR-bridge" "$CLUSTER" up
[[ ! -f "$NODE_OWNER_FILE" ]] || die "node-failures: the crashed plane's owner file is still there"
ip link delete sotest0
BEFORE="$(snapshot)"

# 3. kubelet dies at start: named, with its log; everything else stopped and removed.
expect_failure "kubelet dies at start" "kubelet exited during start-up|last lines of .*kubelet.log" \
  env STATELESS_KUBELET_ARGS="--no-such-flag" STATELESS_RUN_DIR="$BASE_RUN_DIR-kubelet" "$CLUSTER" up

# 4. A crashed run: every process of the plane and the node killed with
#    SIGKILL, its run dir and host state left behind. The next `up`, from
#    another run dir, cleans it and starts; `down` leaves the machine as it was.
log "node-failures: a crashed run is cleaned by the next up"
crashed="$BASE_RUN_DIR-crashed"
out="$(STATELESS_RUN_DIR="$crashed" "$CLUSTER" up 2>&1)" || {
  printf '%s\n' "$out" | tail -n 40 >&2
  die "node-failures: the plane did not start (run $crashed; its output above)"
}
for f in "$crashed"/pids/*.pid; do kill -KILL -- "-$(cat "$f")" 2>/dev/null || kill -KILL "$(cat "$f")" 2>/dev/null || true; done
sleep 1
ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || die "node-failures: the crashed run should have left its bridge behind"
out="$(STATELESS_RUN_DIR="$BASE_RUN_DIR-next" "$CLUSTER" up 2>&1)" || { printf '%s\n' "$out" >&2; die "node-failures: up after a crash failed"; }
grep -q "cleaning up a node left by a crashed plane" <<<"$out" || { printf '%s\n' "$out" >&2; die "node-failures: up did not say it cleaned the crashed node"; }
[[ ! -d "$crashed" ]] || die "node-failures: the crashed run dir $crashed is still there"
STATELESS_RUN_DIR="$BASE_RUN_DIR-next" "$CLUSTER" down >/dev/null 2>&1
same_as_before "crashed run"
passed=$((passed + 1))

log "node-failures: $passed passed, 0 failed"
