#!/usr/bin/env bash
# Build the local node's container images without a registry or a container
# engine, and import them into a containerd. Rebuilds only what changed.
#
#   hack/images.sh build [NAME...]                  build missing/changed images (default: all)
#   hack/images.sh import --address SOCK [NAME...]  build if needed, then import into the
#                                                   containerd at SOCK, namespace k8s.io
#   hack/images.sh list                             name, reference, input hash, state, archive
#   hack/images.sh ref NAME                         print NAME's image reference
#
# `list` builds nothing (it hashes what is there now); `ref redis` installs
# Debian's redis packages when missing, since the tag is their version.
#
# NAME is one of: pause redis operator session-demo. Each image is a
# docker-archive at $CACHE_ROOT/images/<name>.tar tagged with its reference,
# with <name>.hash (input hash) and <name>.config (config digest) beside it.
#
# How: buildah (Debian's 1.28) with a private store (--root/--runroot under
# $CACHE_ROOT/buildah, --storage-driver vfs), used only as `from scratch`,
# `mount` + plain cp, `config` and `commit` straight to a docker-archive.
# That needs no namespace, no network and no capability beyond plain root,
# which is why buildah and not umoci (its fallback) was chosen: it writes the
# docker-archive that `ctr images import` reads and keeps the exact reference in
# it. `buildah run` and `bud` are never used: they need capabilities this
# machine lacks. Every image is from scratch: a binary, its shared-library
# closure (ldd, with the dynamic loader) and the few files it needs.
#
# Rebuild only what changed: every image's rootfs is first staged in a
# directory; its input hash is sha256 over the reference, the image's recipe
# (the text of its ref_/stage_/config_ functions and of the helpers they use),
# its config, and every staged path with type, mode, owner and content. The
# hash is stored as the label dev.stateless.input-hash and in <name>.hash; an
# archive with the same hash is not rebuilt. Layers are committed with a fixed
# timestamp, so the same inputs give the same image (config digest), and
# `import` skips an image that containerd already holds under the same
# reference with the same config digest, fully unpacked.
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

umask 022
IMAGES_DIR="$CACHE_ROOT/images"
BUILDAH_DIR="$CACHE_ROOT/buildah"
ALL_IMAGES=(pause redis operator session-demo)
HASH_LABEL="dev.stateless.input-hash"
# Helpers whose text is part of every image's input hash (they decide what
# goes into the layer or the config).
HASHED_HELPERS=(put put_closure put_dir nonroot_files assemble)

IMAGE=""        # the image being worked on, for messages
REF=""          # set by ref_<name>
CFG=()          # set by config_<name>: arguments for `buildah config`
STAGE=""        # the staged rootfs of the current image
UNAVAILABLE=""  # set by a stage_ function in list mode when an input is missing
HASH=""
TMP_PATHS=()
CONTAINERS=()

cleanup() {
  local c
  for c in "${CONTAINERS[@]}"; do bah rm "$c" >/dev/null 2>&1 || true; done
  if ((${#TMP_PATHS[@]})); then rm -rf "${TMP_PATHS[@]}"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

bah() {
  TMPDIR="$BUILDAH_DIR/tmp" buildah --root "$BUILDAH_DIR/root" --runroot "$BUILDAH_DIR/runroot" \
    --storage-driver vfs "$@"
}

fn_of() { echo "${1//-/_}"; }

# --- Debian packages --------------------------------------------------------

apt_install() { # PKG...
  local who="${IMAGE:-hack/images.sh}" logf="$CACHE_ROOT/logs/apt-images.log" p
  [[ $EUID -eq 0 ]] || die "$who: needs the Debian packages $* and is not root; run as root or: apt-get install -y --no-install-recommends $*"
  command -v apt-get >/dev/null 2>&1 || die "$who: needs the Debian packages $* but apt-get is not available; install them by hand"
  mkdir -p "$(dirname "$logf")"
  for p in "$@"; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then
      log "apt-get update (package $p unknown)"
      apt-get update -q >"$logf" 2>&1 || { tail -n 20 "$logf" >&2; die "$who: apt-get update failed; log: $logf"; }
      break
    fi
  done
  log "$who: apt-get install -y --no-install-recommends $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >"$logf" 2>&1 \
    || { tail -n 20 "$logf" >&2; die "$who: apt-get install $* failed; log: $logf"; }
}

ensure_cmd() { # CMD PKG...
  command -v "$1" >/dev/null 2>&1 && return 0
  apt_install "${@:2}"
  command -v "$1" >/dev/null 2>&1 || die "${IMAGE:-hack/images.sh}: $1 still missing after installing ${*:2}"
}

# Debian's redis-server package ships an init script. Its service must not be
# left running by the install (nothing here should listen on 6379): compare the
# redis-server processes before and after, and stop any the install started.
ensure_redis() {
  [[ -x /usr/bin/redis-server && -x /usr/bin/redis-cli ]] && return 0
  local before after pid
  before=$(pgrep -x redis-server || true)
  apt_install redis-server redis-tools
  [[ -x /usr/bin/redis-server && -x /usr/bin/redis-cli ]] || die "redis: /usr/bin/redis-server or /usr/bin/redis-cli missing after the install"
  after=$(pgrep -x redis-server || true)
  for pid in $after; do
    grep -qx "$pid" <<<"$before" && continue
    log "redis: the package install started redis-server (pid $pid); stopping it"
    if [[ -x /etc/init.d/redis-server ]]; then /etc/init.d/redis-server stop >/dev/null 2>&1 || true; fi
    kill "$pid" 2>/dev/null || true
  done
  sleep 0.2
  after=$(pgrep -x redis-server || true)
  for pid in $after; do
    grep -qx "$pid" <<<"$before" || die "redis: redis-server (pid $pid) started by the package install is still running"
  done
  log "redis: installed redis-server/redis-tools $(/usr/bin/redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'); checked: no redis-server service left running by the install"
}

# --- staging helpers (their text is part of the input hash) -----------------

# put SRC DEST [MODE]: copy SRC (symlinks followed) to the path DEST.
put() {
  mkdir -p "$(dirname "$2")"
  cp -L "$1" "$2"
  chmod "${3:-$(stat -Lc %a "$1")}" "$2"
}

# put_dir ROOT PATH MODE [OWNER]
put_dir() {
  install -d -m "$3" "$1$2"
  chmod "$3" "$1$2"
  if [[ -n "${4:-}" ]]; then chown "$4" "$1$2"; fi
}

# put_closure ROOT BINARY...: every shared library ldd resolves for the
# binaries, at the path ldd names (the loader looks there), dynamic loader
# included. A library ldd cannot find is an error.
put_closure() {
  local root="$1" bin out line lib; shift
  for bin in "$@"; do
    out=$(LC_ALL=C ldd "$bin" 2>&1) || true
    if [[ $out == *"not a dynamic executable"* || $out == *"statically linked"* ]]; then continue; fi
    if grep -q 'not found' <<<"$out"; then
      die "$IMAGE: $bin needs a shared library that ldd cannot find: $(grep 'not found' <<<"$out" | sed 's/^[[:space:]]*//' | paste -sd';')"
    fi
    while read -r line; do
      case "$line" in
        *"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
        /*) lib=${line%% (*} ;;
        *) continue ;; # linux-vdso.so.1: provided by the kernel
      esac
      [[ -f $lib ]] || die "$IMAGE: ldd names $lib for $bin but it is not a file"
      [[ -e $root$lib ]] || put "$lib" "$root$lib"
    done <<<"$out"
  done
}

# Like distroless :nonroot: users root, nobody, nonroot (65532), its home as
# the working dir, a sticky world-writable /tmp, nsswitch.conf for getaddrinfo.
nonroot_files() { # ROOT
  local root="$1"
  put_dir "$root" /etc 0755
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$root/etc/group"
  printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$root/etc/nsswitch.conf"
  chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"
  put_dir "$root" /home 0755
  put_dir "$root" /home/nonroot 0700 65532:65532
  put_dir "$root" /tmp 1777
}

# --- cargo ------------------------------------------------------------------

# cargo_bin MODE MANIFEST BIN-NAME CARGO-ARGS...: sets BIN to the release
# binary. In build mode runs `cargo build --release --locked` (cargo itself
# skips an up-to-date build) and takes the path from cargo's own report; in
# list mode only looks for an existing binary in the target dir.
cargo_bin() {
  local mode="$1" manifest="$2" name="$3"; shift 3
  need cargo "install Rust (rustup); it builds the $IMAGE binary"
  need jq "apt-get install jq"
  BIN=""
  if [[ $mode == list ]]; then
    local target
    target=$(cargo metadata --no-deps --locked --format-version 1 --manifest-path "$manifest" 2>/dev/null \
      | jq -r '.target_directory') || true
    if [[ -n $target && -x $target/release/$name ]]; then BIN="$target/release/$name"; fi
    return 0
  fi
  local logf="$CACHE_ROOT/logs/cargo-$IMAGE.log" json
  json=$(mktemp "$IMAGES_DIR/.cargo-$IMAGE.XXXXXX"); TMP_PATHS+=("$json")
  log "$IMAGE: cargo build --release --locked $* (log: $logf; waits if another cargo holds the lock)"
  if ! (cd "$REPO_ROOT" && cargo build --release --locked --manifest-path "$manifest" "$@" \
        --message-format=json-render-diagnostics) >"$json" 2>"$logf"; then
    tail -n 30 "$logf" >&2
    die "$IMAGE: cargo build --release --locked $* failed; full log: $logf"
  fi
  BIN=$(jq -r --arg n "$name" 'select(.reason == "compiler-artifact" and .target.name == $n
         and (.target.kind | any(. == "bin"))) | .executable // empty' "$json" | tail -n 1)
  [[ -n $BIN && -x $BIN ]] || die "$IMAGE: cargo reported no executable for the binary $name (log: $logf)"
}

# cargo_version MANIFEST PACKAGE: the package's version as cargo resolves it
# (handles version.workspace = true).
cargo_version() {
  need cargo "install Rust (rustup)"
  need jq "apt-get install jq"
  local v
  v=$(cargo metadata --no-deps --locked --format-version 1 --manifest-path "$1" \
      | jq -r --arg p "$2" '.packages[] | select(.name == $p) | .version') || true
  [[ -n $v ]] || die "${IMAGE:-$2}: cannot read the version of package $2 from $1 (cargo metadata)"
  echo "$v"
}

# --- pause --------------------------------------------------------------------
# The sandbox ("infra") container of every pod. containerd 1.6 defaults to
# registry.k8s.io/pause:3.6; the node's containerd config points sandbox_image
# at this image instead. The tag is the one k8s.io/kubernetes at $K8S_VERSION
# builds (build/pause/Makefile TAG; kubeadm's PauseVersion agrees): 3.10.1.

K8S_SRC=""
k8s_src() {
  [[ -n $K8S_SRC ]] && return 0
  need go "install Go >= 1.25; the pause source comes from the k8s.io/kubernetes module"
  local dir
  dir=$(cd "$HACK_DIR/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes 2>/dev/null) || true
  if [[ -z $dir || ! -f $dir/build/pause/linux/pause.c ]]; then
    log "pause: go mod download k8s.io/kubernetes ($K8S_VERSION)"
    (cd "$HACK_DIR/k8s" && go mod download k8s.io/kubernetes) || die "pause: go mod download k8s.io/kubernetes failed"
    dir=$(cd "$HACK_DIR/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes) || die "pause: cannot locate the k8s.io/kubernetes module"
  fi
  [[ -f $dir/build/pause/linux/pause.c && -f $dir/build/pause/Makefile ]] || die "pause: $dir has no build/pause"
  K8S_SRC=$dir
}

pause_tag() {
  local tag
  tag=$(sed -n 's/^TAG ?= *//p' "$K8S_SRC/build/pause/Makefile")
  [[ $tag =~ ^[0-9]+(\.[0-9]+)+$ ]] || die "pause: cannot read TAG from $K8S_SRC/build/pause/Makefile"
  echo "$tag"
}

ref_pause() {
  k8s_src
  REF="registry.k8s.io/pause:$(pause_tag)"
}

stage_pause() { # ROOT MODE
  local root="$1" src tag flags key bin="$IMAGES_DIR/pause.bin" tmp
  k8s_src
  src="$K8S_SRC/build/pause/linux/pause.c"
  tag=$(pause_tag)
  ensure_cmd gcc gcc libc6-dev
  # The Makefile's CFLAGS; its REV is `git describe` of the kubernetes tree,
  # which for the module source is $K8S_VERSION.
  flags=(-Os -Wall -Werror -static "-DVERSION=v$tag-$K8S_VERSION")
  key=$({ cat "$src"; echo "${flags[*]}"; gcc --version; stat -Lc "%n %s %Y" "$(gcc -print-file-name=libc.a)"; } | sha256sum | cut -d' ' -f1)
  if [[ ! -x $bin || "$(cat "$bin.key" 2>/dev/null)" != "$key" ]]; then
    tmp="$bin.tmp.$$"; TMP_PATHS+=("$tmp")
    gcc "${flags[@]}" -o "$tmp" "$src" || die "pause: gcc failed on $src"
    strip "$tmp"
    mv "$tmp" "$bin"
    echo "$key" >"$bin.key"
  fi
  put "$bin" "$root/pause" 0755
}

config_pause() {
  CFG=(--user 65535:65535 --entrypoint '["/pause"]')
}

# --- redis --------------------------------------------------------------------
# Debian's Redis (redis-tools ships the binaries; /usr/bin/redis-server is a
# symlink to redis-check-rdb, which acts by argv[0], so it is copied under the
# name redis-server). Ids 999:1000 as the official redis image: the operator
# runs the managed Redis as that user. The operator's readiness probe is
# `sh -c "redis-cli ... ping | grep -q PONG"`, so /bin/sh (dash) and grep are in
# the image too.

ref_redis() { # MODE
  if [[ ${1:-build} == list ]]; then
    [[ -x /usr/bin/redis-server ]] || { REF="localhost/stateless-dev/redis:?"; return 0; }
  else
    ensure_redis
  fi
  local v
  v=$(/usr/bin/redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
  [[ -n $v ]] || die "redis: cannot read the version from redis-server --version"
  REF="localhost/stateless-dev/redis:$v"
}

stage_redis() { # ROOT MODE
  local root="$1" sh grep
  if [[ $2 == list && ! -x /usr/bin/redis-server ]]; then UNAVAILABLE="redis-server-not-installed"; return 0; fi
  sh=$(command -v dash) || die "redis: dash not found (it is /bin/sh in the image)"
  grep=$(command -v grep)
  put /usr/bin/redis-server "$root/usr/bin/redis-server" 0755
  put /usr/bin/redis-cli "$root/usr/bin/redis-cli" 0755
  put "$sh" "$root/bin/sh" 0755
  put "$grep" "$root/usr/bin/grep" 0755
  put_closure "$root" /usr/bin/redis-server /usr/bin/redis-cli "$sh" "$grep"
  put_dir "$root" /etc 0755
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'redis:x:999:1000:redis:/data:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'redis:x:1000:' >"$root/etc/group"
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
  put_dir "$root" /etc/redis 0755
  put_dir "$root" /data 0755 999:1000
  put_dir "$root" /tmp 1777
}

config_redis() {
  local v="${REF##*:}"
  CFG=(--user 999:1000 --cmd '["redis-server"]' --workingdir /data
       --env PATH=/usr/local/bin:/usr/bin:/bin --port 6379/tcp
       --label org.opencontainers.image.title=redis
       --label "org.opencontainers.image.version=$v"
       --label "org.opencontainers.image.description=Redis $v from Debian's redis-tools package")
}

# --- operator -----------------------------------------------------------------
# The Dockerfile's image without docker: the release binary on a distroless-cc
# like base (glibc + libgcc closure, CA certificates, nonroot 65532), the same
# user, entrypoint, cmd, ports and OCI labels (read from the Dockerfile).

ref_operator() {
  local v app
  v=$(cargo_version "$REPO_ROOT/Cargo.toml" stateless-operator)
  app=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$REPO_ROOT/charts/stateless-operator/Chart.yaml")
  if [[ -n $app && $app != "$v" ]]; then
    log "operator: the chart's appVersion $app differs from Cargo.toml's version $v; using $app (the chart's default image tag)"
    v=$app
  fi
  REF="ghcr.io/stateless-dev/stateless-operator:$v"
}

stage_operator() { # ROOT MODE
  local root="$1"
  cargo_bin "$2" "$REPO_ROOT/Cargo.toml" stateless-operator --bin stateless-operator
  if [[ -z $BIN ]]; then UNAVAILABLE="no-release-binary"; return 0; fi
  put "$BIN" "$root/usr/local/bin/stateless-operator" 0755
  put_closure "$root" "$BIN"
  put /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt" 0644
  nonroot_files "$root"
}

config_operator() {
  local labels=() l
  # The Dockerfile's LABEL instruction (key="value" pairs, continued lines).
  while IFS= read -r l; do labels+=(--label "$l"); done < <(
    sed -n '/^LABEL /,/[^\\]$/p' "$REPO_ROOT/Dockerfile" | grep -o '[a-z][a-z0-9.-]*="[^"]*"' | sed 's/="\(.*\)"$/=\1/')
  ((${#labels[@]})) || die "operator: no LABEL found in $REPO_ROOT/Dockerfile"
  CFG=(--user 65532:65532 --entrypoint '["/usr/local/bin/stateless-operator"]' --cmd '["run"]'
       --port 8080/tcp --port 8443/tcp --workingdir /home/nonroot
       --env PATH=/usr/local/bin:/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
       "${labels[@]}" --label "org.opencontainers.image.version=${REF##*:}")
}

# --- session-demo -------------------------------------------------------------
# The demo web app (crate examples/session-demo, next to the manifests that run
# it). Skipped while its Cargo.toml does not exist. The tag is the crate's
# version as cargo resolves it.

DEMO_MANIFEST="$REPO_ROOT/examples/session-demo/Cargo.toml"

ref_session_demo() {
  REF="ghcr.io/stateless-dev/session-demo:$(cargo_version "$DEMO_MANIFEST" session-demo)"
}

stage_session_demo() { # ROOT MODE
  local root="$1"
  cargo_bin "$2" "$DEMO_MANIFEST" session-demo -p session-demo
  if [[ -z $BIN ]]; then UNAVAILABLE="no-release-binary"; return 0; fi
  put "$BIN" "$root/usr/local/bin/session-demo" 0755
  put_closure "$root" "$BIN"
  nonroot_files "$root"
}

config_session_demo() {
  CFG=(--user 65532:65532 --entrypoint '["/usr/local/bin/session-demo"]' --cmd '["serve"]'
       --port 8080/tcp --workingdir /home/nonroot
       --env PATH=/usr/local/bin:/usr/bin:/bin --env LISTEN=0.0.0.0:8080
       --label org.opencontainers.image.title=session-demo
       --label org.opencontainers.image.source=https://github.com/stateless-dev/stateless-operator
       --label "org.opencontainers.image.version=${REF##*:}")
}

# --- build ----------------------------------------------------------------------

# prepare NAME MODE: sets REF, stages the rootfs in STAGE, sets CFG and HASH
# (HASH is empty when an input is missing in list mode, see UNAVAILABLE).
prepare() {
  local name="$1" mode="$2" fn
  fn=$(fn_of "$name")
  IMAGE=$name REF="" CFG=() UNAVAILABLE="" HASH=""
  "ref_$fn" "$mode"
  mkdir -p "$IMAGES_DIR"
  STAGE=$(mktemp -d "$IMAGES_DIR/.stage-$name.XXXXXX"); TMP_PATHS+=("$STAGE")
  chmod 0755 "$STAGE"
  "stage_$fn" "$STAGE" "$mode"
  [[ -z $UNAVAILABLE ]] || return 0
  "config_$fn"
  HASH=$({
    printf 'reference %s\n' "$REF"
    declare -f "ref_$fn" "stage_$fn" "config_$fn" "${HASHED_HELPERS[@]}"
    printf 'config %s\n' "${CFG[@]}"
    (cd "$STAGE" && find . -mindepth 1 -printf '%y %#m %U:%G %p %l\n' | LC_ALL=C sort)
    (cd "$STAGE" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum)
  } | sha256sum | cut -d' ' -f1)
}

# assemble NAME OUT: the staged rootfs as one layer on scratch, with CFG, as a
# docker-archive at OUT tagged REF.
assemble() {
  local name="$1" out="$2" ctr mnt
  ctr=$(bah from --name "images-$name-$$" scratch) || die "$name: buildah from scratch failed"
  CONTAINERS+=("$ctr")
  mnt=$(bah mount "$ctr") || die "$name: buildah mount failed"
  cp -a "$STAGE/." "$mnt/" || die "$name: copying the rootfs into the working container failed"
  bah config "${CFG[@]}" --label "$HASH_LABEL=$HASH" --created-by "hack/images.sh build $name" "$ctr" \
    || die "$name: buildah config failed"
  bah commit -q --format oci --timestamp 0 --rm "$ctr" "docker-archive:$out:$REF" >/dev/null \
    || die "$name: buildah commit to docker-archive failed"
}

# config_digest ARCHIVE: sha256 of the image config in a docker-archive.
config_digest() {
  local cfg
  cfg=$(tar -xOf "$1" manifest.json | jq -r '.[0].Config') || return 1
  echo "sha256:$(tar -xOf "$1" "$cfg" | sha256sum | cut -d' ' -f1)"
}

BUILT=""  # set by build_one: archive path, or empty when skipped
build_one() { # NAME EXPLICIT(0|1)
  local name="$1" explicit="$2" tar="$IMAGES_DIR/$1.tar" start=$SECONDS tmp got digest
  BUILT=""
  if [[ $name == session-demo && ! -f $DEMO_MANIFEST ]]; then
    ((explicit)) && die "session-demo: examples/session-demo/Cargo.toml does not exist (the crate examples/session-demo is not there)"
    log "session-demo: skipped (examples/session-demo/Cargo.toml does not exist)"
    return 0
  fi
  prepare "$name" build
  if [[ -f $tar && -f $IMAGES_DIR/$name.config && "$(cat "$IMAGES_DIR/$name.hash" 2>/dev/null)" == "$HASH" ]]; then
    log "$name: up to date ($REF, input hash ${HASH:0:12})"
    BUILT=$tar
    return 0
  fi
  log "$name: building $REF (input hash ${HASH:0:12})"
  rm -f "$IMAGES_DIR/$name.hash"  # no hash file = not complete, whatever happens next
  tmp="$IMAGES_DIR/.$name.tar.tmp.$$"; TMP_PATHS+=("$tmp")
  assemble "$name" "$tmp"
  got=$(tar -xOf "$tmp" manifest.json | jq -r '.[0].RepoTags[0]')
  [[ $got == "$REF" ]] || die "$name: the archive is tagged '$got', expected $REF"
  digest=$(config_digest "$tmp") || die "$name: cannot read the image config from the archive"
  mv "$tmp" "$tar"
  echo "$digest" >"$IMAGES_DIR/$name.config"
  echo "$HASH" >"$IMAGES_DIR/$name.hash"
  log "$name: built $REF in $((SECONDS - start))s, $(du -h --apparent-size "$tar" | cut -f1), config $digest"
  BUILT=$tar
}

# --- import ---------------------------------------------------------------------

CTR_ADDRESS=""
cctr() { ctr --address "$CTR_ADDRESS" --namespace k8s.io "$@"; }

# The config digest of the image containerd holds under REF (empty if none).
ctr_config_digest() { # REF
  local digest
  digest=$(cctr images ls 2>/dev/null | awk -v r="$1" '$1 == r { print $3 }') || true
  [[ -n $digest ]] || return 0
  cctr content get "$digest" 2>/dev/null | jq -r '.config.digest // empty' 2>/dev/null || true
}

import_one() { # NAME EXPLICIT
  local name="$1" want have logf="$CACHE_ROOT/logs/ctr-import-$1.log" platform
  build_one "$name" "$2"
  [[ -n $BUILT ]] || return 0
  want=$(cat "$IMAGES_DIR/$name.config")
  have=$(ctr_config_digest "$REF")
  if [[ $have == "$want" ]] && cctr images check -q 2>/dev/null | grep -xF "$REF" >/dev/null; then
    log "$name: up to date in containerd ($REF, config ${want:7:12})"
    return 0
  fi
  case "$(uname -m)" in
    x86_64) platform=linux/amd64 ;;
    aarch64) platform=linux/arm64 ;;
    *) platform="linux/$(uname -m)" ;;
  esac
  log "$name: importing $REF into containerd at $CTR_ADDRESS (namespace k8s.io)"
  # Unpacked (no --no-unpack) into the default snapshotter, for this platform,
  # under the archive's own reference (no --base-name, no --digests).
  cctr images import --platform "$platform" "$BUILT" >"$logf" 2>&1 \
    || { tail -n 20 "$logf" >&2; die "$name: ctr images import failed; log: $logf"; }
  cctr images label "$REF" "$HASH_LABEL=$HASH" >/dev/null 2>>"$logf" \
    || die "$name: ctr images label $REF failed; log: $logf"
  have=$(ctr_config_digest "$REF")
  [[ $have == "$want" ]] || die "$name: after the import containerd has ${have:-no image} under $REF, expected config $want"
  cctr images check -q 2>/dev/null | grep -xF "$REF" >/dev/null || die "$name: $REF is in containerd but not complete and unpacked (ctr images check)"
  log "$name: imported $REF"
}

# --- main -------------------------------------------------------------------------

select_images() { # NAME... -> SELECTED, EXPLICIT
  local n
  SELECTED=() EXPLICIT=1
  if (($# == 0)); then SELECTED=("${ALL_IMAGES[@]}"); EXPLICIT=0; return 0; fi
  for n in "$@"; do
    [[ " ${ALL_IMAGES[*]} " == *" $n "* ]] || die "unknown image '$n' (one of: ${ALL_IMAGES[*]})"
    SELECTED+=("$n")
  done
}

lock() {
  mkdir -p "$IMAGES_DIR" "$BUILDAH_DIR/tmp" "$CACHE_ROOT/logs"
  exec 9>"$IMAGES_DIR/.lock"
  if ! flock -n 9; then
    log "another hack/images.sh holds $IMAGES_DIR/.lock; waiting"
    flock 9
  fi
}

prereqs_build() {
  [[ $EUID -eq 0 ]] || die "hack/images.sh $1 must run as root (buildah's private vfs store keeps file owners such as redis 999:1000)"
  [[ $CACHE_ROOT != *:* ]] || die "CACHE_ROOT ($CACHE_ROOT) must not contain ':' (buildah's docker-archive:PATH:REF syntax)"
  ensure_cmd buildah buildah
  ensure_cmd jq jq
  need flock "apt-get install util-linux"
}

cmd_build() {
  local n
  select_images "$@"
  prereqs_build build
  lock
  for n in "${SELECTED[@]}"; do build_one "$n" "$EXPLICIT"; done
}

cmd_import() {
  local n args=()
  while (($#)); do
    case "$1" in
      --address|-a) (($# >= 2)) || die "--address needs a socket path"; CTR_ADDRESS="$2"; shift 2 ;;
      --address=*) CTR_ADDRESS="${1#*=}"; shift ;;
      -*) die "unknown option $1 (usage: hack/images.sh import --address SOCK [NAME...])" ;;
      *) args+=("$1"); shift ;;
    esac
  done
  [[ -n $CTR_ADDRESS ]] || die "import needs --address SOCK (the containerd socket of the node)"
  [[ -S $CTR_ADDRESS ]] || die "import: $CTR_ADDRESS is not a socket (is the node's containerd running?)"
  need ctr "the containerd client; apt-get install containerd (this script does not start containerd)"
  select_images "${args[@]}"
  prereqs_build import
  cctr version >/dev/null 2>&1 || die "import: containerd at $CTR_ADDRESS does not answer (ctr version)"
  lock
  for n in "${SELECTED[@]}"; do import_one "$n" "$EXPLICIT"; done
}

cmd_list() {
  local n state hash
  need jq "apt-get install jq"
  for n in "${ALL_IMAGES[@]}"; do
    if [[ $n == session-demo && ! -f $DEMO_MANIFEST ]]; then
      printf '%s\t%s\t%s\t%s\t%s\n' "$n" "-" "-" "skipped:no-examples/session-demo/Cargo.toml" "$IMAGES_DIR/$n.tar"
      continue
    fi
    prepare "$n" list
    hash=${HASH:--}
    if [[ -n $UNAVAILABLE ]]; then state=$UNAVAILABLE
    elif [[ ! -f $IMAGES_DIR/$n.tar ]]; then state=missing
    elif [[ "$(cat "$IMAGES_DIR/$n.hash" 2>/dev/null)" == "$HASH" ]]; then state=up-to-date
    else state=stale
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$REF" "$hash" "$state" "$IMAGES_DIR/$n.tar"
    rm -rf "$STAGE"
  done
}

cmd_ref() {
  (($# == 1)) || die "usage: hack/images.sh ref NAME"
  select_images "$1"
  IMAGE=$1
  if [[ $1 == session-demo && ! -f $DEMO_MANIFEST ]]; then die "session-demo: examples/session-demo/Cargo.toml does not exist"; fi
  "ref_$(fn_of "$1")" ref
  echo "$REF"
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  import) shift; cmd_import "$@" ;;
  list) shift; cmd_list "$@" ;;
  ref) shift; cmd_ref "$@" ;;
  -h|--help|help) usage ;;
  *) usage ;;
esac
