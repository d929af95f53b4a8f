#!/usr/bin/env bash
# Builds the four container images of the real-node tests (linux/amd64) as
# OCI image archives for `ctr -n k8s.io images import`, without a Docker
# daemon, into a content-addressed cache, and prints the image set's
# directory as the LAST line of stdout:
#
#   dir=$(olm-tests/images/build.sh)        # build if needed, then print
#   olm-tests/images/build.sh --print-dir   # print only; exit 1 if not built
#   olm-tests/images/build.sh --print-refs  # print "<name> <reference>" lines
#
# Cache layout (see README.md):
#   ${LOCUST_IMAGES_CACHE:-$HOME/.cache/locust-k8s-operator/images}/
#     .lock                 flock(1) lock serialising builds
#     <name>-<key>/         one entry per image (pause, target, locust, operator)
#       .complete image.tar reference digest info.txt
#     <setkey>/             the printed directory: key = sha256(the four keys)[:16]
#       .complete images.tsv {pause,target,locust,operator}.tar (hard links)
#
# Needs: go (pause, target), cargo with the x86_64-unknown-linux-musl target
# and musl-gcc (operator), mmdebstrap, chroot, unshare and pip on the host
# (locust), GNU tar, gzip, sha256sum, flock. Run as root (mmdebstrap, chroot).
set -euo pipefail
umask 022

IMAGES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT="$IMAGES_DIR/$(basename "${BASH_SOURCE[0]}")"
OLM_TESTS=$(dirname "$IMAGES_DIR")
ROOT=$(dirname "$OLM_TESTS")
CACHE_ROOT=${LOCUST_IMAGES_CACHE:-$HOME/.cache/locust-k8s-operator/images}
CARGO_TARGET=${LOCUST_IMAGES_CARGO_TARGET_DIR:-$ROOT/target/musl}
RUST_TARGET=x86_64-unknown-linux-musl
IMAGES_RS="$OLM_TESTS/src/images.rs"
REQUIREMENTS="$OLM_TESTS/locust-requirements.txt"
CSV="$ROOT/bundle/manifests/locust-k8s-operator.clusterserviceversion.yaml"
LOCUST_HOOK="$IMAGES_DIR/locust-rootfs.sh"
DEBIAN_SUITE=bookworm              # python3 is 3.11 there
DEBIAN_PYTHON=3.11
MMDEBSTRAP_MERGED_USR=/usr/share/mmdebstrap/hooks/merged-usr
OPERATOR_MAX_BYTES=$((25 * 1000 * 1000))
NAMES=(pause target locust operator)
DEFAULT_PATH=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

usage() { # the comment block at the top of this file
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SCRIPT"
}

MODE=build
case "${1:-}" in
  "") ;;
  --print-dir) MODE=print-dir ;;
  --print-refs) MODE=print-refs ;;
  -h|--help) usage; exit 0 ;;
  *) echo "build.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac

log() { printf '[%s] images: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { echo "build.sh: $*" >&2; exit 1; }
sha() { sha256sum | cut -c1-64; }
file_sha() { sha256sum <"$1" | cut -c1-64; }

# --- references: the one place is olm-tests/src/images.rs -------------------------
# rust_const NAME: the value of `pub const NAME: &str = "...";` in images.rs.
rust_const() {
  local v
  v=$(sed -n "s/^pub const $1: &str = \"\\([^\"\\\\]*\\)\";\$/\\1/p" "$IMAGES_RS")
  [[ -n $v && $v != *$'\n'* ]] || die "no single 'pub const $1: &str = \"...\";' in $IMAGES_RS"
  printf '%s' "$v"
}
LOCUST_VERSION=$(sed -n 's/^locust==\([^[:space:]]*\).*/\1/p' "$REQUIREMENTS" | head -n 1)
[[ -n $LOCUST_VERSION ]] || die "no locust==<version> line in $REQUIREMENTS"
# The operator image is the one the generated CSV deploys (manifests-gen's
# OPERATOR_IMAGE_REPO:<release>): deployments[0] ... containers[0].image.
OPERATOR_REF=$(awk '/^ *deployments:/ { d = 1 } d && /^ *image: / { print $2; exit }' "$CSV")
[[ -n $OPERATOR_REF ]] || die "no deployment image in $CSV"
# (plain assignments, so that a failing rust_const stops the script)
PAUSE_REF=$(rust_const PAUSE_IMAGE)
TARGET_REF=$(rust_const TARGET_IMAGE)
LOCUST_REPO=$(rust_const LOCUST_IMAGE_REPO)
declare -A REF=([pause]=$PAUSE_REF [target]=$TARGET_REF [locust]="$LOCUST_REPO:$LOCUST_VERSION" [operator]=$OPERATOR_REF)
if [[ $MODE == print-refs ]]; then
  for n in "${NAMES[@]}"; do printf '%s %s\n' "$n" "${REF[$n]}"; done
  exit 0
fi

# --- keys --------------------------------------------------------------------------
command -v go >/dev/null 2>&1 || die "go not found in PATH"
export GOTOOLCHAIN=local
GO_VERSION=$(go version)
SCRIPT_SHA=$(file_sha "$SCRIPT")

go_key() { # NAME: sources + script + Go version + reference
  {
    printf 'image %s %s\n' "$1" "${REF[$1]}"
    printf 'build.sh %s\n' "$SCRIPT_SHA"
    printf '%s\n' "$GO_VERSION"
    local f
    for f in go.mod main.go; do
      printf '%s/%s %s\n' "$1" "$f" "$(file_sha "$IMAGES_DIR/$1/$f")"
    done
  } | sha | cut -c1-16
}
declare -A KEY
KEY[pause]=$(go_key pause)
KEY[target]=$(go_key target)
KEY[locust]=$({
  printf 'image locust %s\n' "${REF[locust]}"
  printf 'build.sh %s\n' "$SCRIPT_SHA"
  printf 'locust-rootfs.sh %s\n' "$(file_sha "$LOCUST_HOOK")"
  printf 'locust-requirements.txt %s\n' "$(file_sha "$REQUIREMENTS")"
  printf 'debian %s amd64 python%s\n' "$DEBIAN_SUITE" "$DEBIAN_PYTHON"
} | sha | cut -c1-16)

# The operator binary is keyed by its sources: the content of every file
# git knows (tracked, or untracked and not ignored) under operator/ (the
# fuzz crate aside: not part of the binary) plus the workspace manifest and
# lock file, the toolchain (`rustc -Vv`) and this script (its build flags).
# A fresh clone of the same commit finds the binary built for it in the
# cache and needs no cargo run; a change to any source builds a new one.
operator_src_key() {
  command -v rustc >/dev/null 2>&1 || die "rustc not found in PATH"
  {
    printf 'build.sh %s\n' "$SCRIPT_SHA"
    printf 'target %s\n' "$RUST_TARGET"
    rustc -Vv
    (
      cd "$ROOT"
      git ls-files -z --cached --others --exclude-standard -- \
        Cargo.toml Cargo.lock operator ':!operator/fuzz' |
        sort -z -u | xargs -0 -r sha256sum
    ) || die "cannot list the operator's sources with git (a git checkout is needed)"
  } | sha | cut -c1-16
}
OPERATOR_SRC_KEY=$(operator_src_key)
OPERATOR_CACHED="$CACHE_ROOT/operator-bin-$OPERATOR_SRC_KEY/locust-k8s-operator"
build_operator_binary() {
  command -v cargo >/dev/null 2>&1 || die "cargo not found in PATH"
  command -v musl-gcc >/dev/null 2>&1 || die "musl-gcc not found (apt-get install musl-tools)"
  if ! rustup target list --installed 2>/dev/null | grep -qx "$RUST_TARGET"; then
    log "rustup target add $RUST_TARGET"
    rustup target add "$RUST_TARGET" >&2
  fi
  local start=$SECONDS
  log "cargo build --release --target $RUST_TARGET (CARGO_TARGET_DIR=$CARGO_TARGET; a cold build takes ~5-10 minutes on 2 cores)"
  (
    cd "$ROOT"
    # Paths into the binary (panic locations, debug info remnants) name
    # neither this checkout nor CARGO_HOME: the same sources give the same
    # binary in any clone, hence the same image digest.
    local cargo_home=${CARGO_HOME:-$HOME/.cargo}
    CARGO_TARGET_DIR="$CARGO_TARGET" CC_x86_64_unknown_linux_musl=musl-gcc \
      RUSTFLAGS="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$ROOT=/src" \
      cargo build --release --locked --quiet -p locust-k8s-operator --bin locust-k8s-operator \
      --target "$RUST_TARGET" >&2
  )
  log "  cargo done in $((SECONDS - start))s"
  local built="$CARGO_TARGET/$RUST_TARGET/release/locust-k8s-operator"
  local dir tmp
  dir=$(dirname "$OPERATOR_CACHED")
  mkdir -p "$CACHE_ROOT"
  tmp=$(mktemp -d "$CACHE_ROOT/.tmp-operator-bin.XXXXXX")
  cp "$built" "$tmp/locust-k8s-operator"
  chmod 755 "$tmp"
  rm -rf "$dir"
  mv -T "$tmp" "$dir"
}
if [[ ! -x $OPERATOR_CACHED ]]; then
  if [[ $MODE == print-dir ]]; then
    echo "build.sh: no operator binary built from the current sources yet (run $SCRIPT)" >&2
    exit 1
  fi
  build_operator_binary
fi
OPERATOR_BIN=$OPERATOR_CACHED
KEY[operator]=$({
  printf 'image operator %s\n' "${REF[operator]}"
  printf 'build.sh %s\n' "$SCRIPT_SHA"
  printf 'binary %s\n' "$(file_sha "$OPERATOR_BIN")"
  for f in oci.rs images.rs; do
    printf 'manifests-gen/src/%s %s\n' "$f" "$(file_sha "$ROOT/manifests-gen/src/$f")"
  done
} | sha | cut -c1-16)

SET_KEY=$(for n in "${NAMES[@]}"; do printf '%s %s\n' "$n" "${KEY[$n]}"; done | sha | cut -c1-16)
TARGET="$CACHE_ROOT/$SET_KEY"

if [[ -f "$TARGET/.complete" ]]; then
  echo "$TARGET"
  exit 0
fi
if [[ $MODE == print-dir ]]; then
  echo "build.sh: images not built yet (run $SCRIPT)" >&2
  echo "$TARGET"
  exit 1
fi

# --- build (serialised by an exclusive lock) ----------------------------------------
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_ROOT/.lock; waiting for it"
  flock 9
fi
if [[ -f "$TARGET/.complete" ]]; then
  log "built by a concurrent run"
  echo "$TARGET"
  exit 0
fi
# Anything without .complete, and any .tmp-* dir, is debris of a killed
# build: complete trees are renamed into place, and we hold the lock. A
# killed mmdebstrap may have left /proc, /sys or /dev mounted in a rootfs
# there: never delete through a mount.
no_mounts_under() {
  if findmnt -rn -o TARGET | grep -q -F "$1"; then
    die "file systems are mounted under $1 (a killed build?); unmount them first: $(findmnt -rn -o TARGET | grep -F "$1" | head -n 3 | tr '\n' ' ')"
  fi
}
no_mounts_under "$CACHE_ROOT/"
rm -rf --one-file-system "$TARGET" "$CACHE_ROOT"/.tmp-*
TMPS=()
cleanup() { ((${#TMPS[@]} == 0)) || rm -rf --one-file-system "${TMPS[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
new_tmp() { # NAME: a fresh 0755 temp dir in the cache (same file system: rename works)
  local t
  t=$(mktemp -d "$CACHE_ROOT/.tmp-$1.XXXXXX")
  chmod 755 "$t"
  TMPS+=("$t")
  printf '%s' "$t"
}

# --- deterministic tar and OCI layout -------------------------------------------------
TAR_DET=(--format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime
  --sort=name --numeric-owner)
# tar_dir OUT DIR [TAR OPTIONS...]: the top-level entries of DIR, sorted, as a
# layer (no ./ prefix, no entry for DIR itself).
tar_dir() {
  local out=$1 dir=$2; shift 2
  local -a entries
  mapfile -t entries < <(cd "$dir" && LC_ALL=C ls -A | LC_ALL=C sort)
  ((${#entries[@]} > 0)) || die "empty layer $dir"
  tar "${TAR_DET[@]}" "$@" -C "$dir" -cf "$out" -- "${entries[@]}"
}
json_str() {
  local s=$1
  [[ $s != *[$'\x01'-$'\x1f']* ]] || die "control character in JSON string"
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}
json_list() {
  local out="" x
  for x in "$@"; do out+="${out:+,}$(json_str "$x")"; done
  printf '[%s]' "$out"
}
# write_oci DIR NAME LAYER_TAR CONFIG_OBJECT: DIR/image.tar (an OCI image
# layout, tarred) with one gzip layer, plus DIR/{reference,digest,info.txt}.
# CONFIG_OBJECT is the image config's "config" member (User, Env, ...).
write_oci() {
  local dir=$1 name=$2 layer=$3 config_object=$4
  local ref=${REF[$name]} work="$dir/oci" start=$SECONDS
  mkdir -p "$work/blobs/sha256"
  local diff_id layer_digest layer_size tar_size
  diff_id=$(file_sha "$layer")
  tar_size=$(stat -c %s "$layer")
  gzip -n -6 -c "$layer" >"$work/layer.gz"
  layer_digest=$(file_sha "$work/layer.gz")
  layer_size=$(stat -c %s "$work/layer.gz")
  mv "$work/layer.gz" "$work/blobs/sha256/$layer_digest"
  rm -f "$layer"

  local config config_digest manifest manifest_digest index
  config='{"architecture":"amd64","config":'"$config_object"
  config+=',"created":"1970-01-01T00:00:00Z","history":[{"created":"1970-01-01T00:00:00Z","created_by":'
  config+="$(json_str "olm-tests/images/build.sh $name")"'}],"os":"linux"'
  config+=',"rootfs":{"diff_ids":["sha256:'"$diff_id"'"],"type":"layers"}}'
  printf '%s' "$config" >"$work/config.json"
  config_digest=$(file_sha "$work/config.json")
  mv "$work/config.json" "$work/blobs/sha256/$config_digest"

  manifest='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"'
  manifest+=',"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$config_digest"'","size":'"${#config}"'}'
  manifest+=',"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'"$layer_digest"'","size":'"$layer_size"'}]}'
  printf '%s' "$manifest" >"$work/manifest.json"
  manifest_digest=$(file_sha "$work/manifest.json")
  mv "$work/manifest.json" "$work/blobs/sha256/$manifest_digest"

  index='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{'
  index+='"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$manifest_digest"'","size":'"${#manifest}"
  index+=',"annotations":{"io.containerd.image.name":'"$(json_str "$ref")"',"org.opencontainers.image.ref.name":'"$(json_str "$ref")"'}'
  index+=',"platform":{"architecture":"amd64","os":"linux"}}]}'
  printf '%s' "$index" >"$work/index.json"
  printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"

  tar "${TAR_DET[@]}" --mtime=@0 --owner=0 --group=0 --mode=a+rX,go-w \
    -C "$work" -cf "$dir/image.tar" oci-layout index.json blobs
  rm -rf "$work"
  printf '%s\n' "$ref" >"$dir/reference"
  printf 'sha256:%s\n' "$manifest_digest" >"$dir/digest"
  {
    printf 'reference %s\n' "$ref"
    printf 'manifest sha256:%s\n' "$manifest_digest"
    printf 'config sha256:%s\n' "$config_digest"
    printf 'layer sha256:%s\n' "$layer_digest"
    printf 'diff_id sha256:%s\n' "$diff_id"
    printf 'layer_bytes_gzip %s\n' "$layer_size"
    printf 'layer_bytes_tar %s\n' "$tar_size"
    printf 'archive_bytes %s\n' "$(stat -c %s "$dir/image.tar")"
  } >>"$dir/info.txt"
  log "  $ref: manifest sha256:${manifest_digest:0:12} layer $((layer_size / 1024)) KiB gzip / $((tar_size / 1024)) KiB tar (layout in $((SECONDS - start))s)"
}

# --- the images ---------------------------------------------------------------------
# go_image DIR NAME USER: a static Go program (olm-tests/images/NAME/) as /NAME.
go_image() {
  local dir=$1 name=$2 user=$3 start=$SECONDS
  mkdir -p "$dir/rootfs"
  (
    cd "$IMAGES_DIR/$name"
    CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=v1 GOFLAGS=-buildvcs=false \
      go build -trimpath -ldflags "-s -w" -o "$dir/rootfs/$name" .
  )
  chmod 0755 "$dir/rootfs/$name"
  printf 'build_seconds_go %s\n' "$((SECONDS - start))" >"$dir/info.txt"
  tar_dir "$dir/layer.tar" "$dir/rootfs" --mtime=@0 --owner=0 --group=0
  rm -rf "$dir/rootfs"
  write_oci "$dir" "$name" "$dir/layer.tar" \
    '{"Entrypoint":'"$(json_list "/$name")"',"Env":'"$(json_list "$DEFAULT_PATH")"',"User":'"$(json_str "$user")"'}'
}

build_pause() { go_image "$1" pause 65535:65535; }

build_target() { go_image "$1" target 65532:65532; }

build_operator() {
  local dir=$1
  if command -v readelf >/dev/null 2>&1; then
    ! readelf -lW "$OPERATOR_BIN" | grep -q INTERP || die "$OPERATOR_BIN is dynamically linked"
  fi
  printf 'binary_sha256 %s\n' "$(file_sha "$OPERATOR_BIN")" >"$dir/info.txt"
  # The release's definition of the image (manifests-gen/src/images.rs,
  # written by manifests-gen/src/oci.rs), not a copy of it.
  local out
  out=$(cd "$ROOT" && cargo run -q --locked -p manifests-gen -- image operator \
    --binary "amd64=$OPERATOR_BIN" --version "${REF[operator]##*:}" --layout "$dir/oci") ||
    die "manifests-gen image operator failed"
  [[ $out == "${REF[operator]} sha256:"* ]] || die "manifests-gen image operator printed: $out"
  tar "${TAR_DET[@]}" --mtime=@0 --owner=0 --group=0 --mode=a+rX,go-w \
    -C "$dir/oci" -cf "$dir/image.tar" oci-layout index.json blobs
  rm -rf "$dir/oci"
  printf '%s\n' "${REF[operator]}" >"$dir/reference"
  printf '%s\n' "${out##* }" >"$dir/digest"
  {
    printf 'reference %s\n' "${REF[operator]}"
    printf 'manifest %s\n' "${out##* }"
    printf 'archive_bytes %s\n' "$(stat -c %s "$dir/image.tar")"
  } >>"$dir/info.txt"
  log "  ${REF[operator]}: manifest ${out##* }"
  local size
  size=$(stat -c %s "$dir/image.tar")
  ((size <= OPERATOR_MAX_BYTES)) || die "operator image is $size bytes (> $OPERATOR_MAX_BYTES)"
}

build_locust() {
  local dir=$1 start=$SECONDS
  command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap not found (apt-get install mmdebstrap)"
  [[ $(id -u) == 0 ]] || die "the Locust image needs root (mmdebstrap, chroot)"
  local wheels="$dir/wheels" rootfs="$dir/rootfs"
  # Wheels for bookworm's CPython 3.11 / glibc 2.36, fetched on the host (its
  # pip has this machine's CA setup); manylinux_2_X tags are not expanded
  # downwards by pip, so list them all.
  local -a platforms=(--platform manylinux2014_x86_64)
  local g
  for g in $(seq 17 36); do platforms+=(--platform "manylinux_2_${g}_x86_64"); done
  log "  downloading wheels for locust==$LOCUST_VERSION (cp${DEBIAN_PYTHON/./}, manylinux x86_64)"
  env -u PIP_FIND_LINKS python3 -m pip download --quiet --disable-pip-version-check \
    --only-binary=:all: "${platforms[@]}" --python-version "$DEBIAN_PYTHON" --implementation cp \
    --abi "cp${DEBIAN_PYTHON/./}" --abi abi3 --abi none \
    -d "$wheels" "locust==$LOCUST_VERSION" >&2
  printf 'build_seconds_wheels %s\n' "$((SECONDS - start))" >"$dir/info.txt"
  ls "$wheels" | LC_ALL=C sort | sed 's/^/wheel /' >>"$dir/info.txt"

  log "  mmdebstrap $DEBIAN_SUITE minbase + python3 + venv (about a minute)"
  local t=$SECONDS
  # The merged-usr hook makes /bin, /lib, ... symlinks itself, so apt does not
  # pull in the usrmerge package and, with it, all of Perl (~50 MB).
  [[ -d $MMDEBSTRAP_MERGED_USR ]] || die "no $MMDEBSTRAP_MERGED_USR (mmdebstrap too old?)"
  mmdebstrap --quiet --variant=minbase --architectures=amd64 \
    --hook-dir="$MMDEBSTRAP_MERGED_USR" \
    --include=python3,python3-venv,ca-certificates \
    --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook="bash $(printf %q "$LOCUST_HOOK") \"\$1\" $(printf %q "$wheels") $(printf %q "$LOCUST_VERSION")" \
    "$DEBIAN_SUITE" "$rootfs" >&2
  rm -rf "$wheels"
  printf 'build_seconds_rootfs %s\n' "$((SECONDS - t))" >>"$dir/info.txt"
  no_mounts_under "$rootfs"
  # mmdebstrap leaves the host's resolver and host name; the runtime mounts its own.
  rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
  chroot "$rootfs" /opt/venv/bin/python -m pip --version >/dev/null 2>&1 && die "pip is still in the venv"
  chroot "$rootfs" dpkg-query -W -f '${Package} ${Version}\n' | sed 's/^/deb /' >>"$dir/info.txt"
  chroot "$rootfs" /opt/venv/bin/python -c \
    'import importlib.metadata as m; print("\n".join(sorted(f"pip {d.name}=={d.version}" for d in m.distributions())))' \
    >>"$dir/info.txt"

  # Gate: `locust --version` as the image's user, no network, no writable root.
  local got
  got=$(unshare --net --mount --fork bash -c '
    set -e
    mount --bind "$1" "$1"; mount -o remount,bind,ro "$1"
    exec chroot --userspec=1000:1000 "$1" /usr/bin/env -i \
      PATH=/opt/venv/bin:/usr/bin:/bin HOME=/home/locust PYTHONUNBUFFERED=1 locust --version
  ' _ "$rootfs" 2>&1) || die "locust --version failed in the rootfs: $got"
  [[ $got == *"$LOCUST_VERSION"* ]] || die "locust --version printed: $got"
  log "  $got"

  # One layer: the whole rootfs, sorted, real owners and modification times
  # (Python's timestamp .pyc files must match their sources' mtimes, or every
  # start would recompile them, unable to cache them on a read-only root);
  # /dev, /proc and /sys stay as empty directories for the runtime.
  tar_dir "$dir/layer.tar" "$rootfs" --anchored --exclude='dev/*' --exclude='proc/*' --exclude='sys/*'
  rm -rf --one-file-system "$rootfs"
  # Like locustio/locust: ENTRYPOINT ["locust"], venv first on PATH, user
  # 1000, WORKDIR /home/locust, ports 5557 (master) and 8089 (web UI).
  write_oci "$dir" locust "$dir/layer.tar" \
    '{"Entrypoint":["locust"],"Env":'"$(json_list \
      "PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      "LANG=C.UTF-8" "PYTHONUNBUFFERED=1" "HOME=/home/locust")"',"ExposedPorts":{"5557/tcp":{},"8089/tcp":{}}'\
',"Labels":{"org.opencontainers.image.version":'"$(json_str "$LOCUST_VERSION")"'},"User":"1000:1000","WorkingDir":"/home/locust"}'
}

# --- build missing entries, then the set ----------------------------------------------
TOTAL_START=$SECONDS
log "building image set $SET_KEY into $CACHE_ROOT ($(nproc) cpus)"
for n in "${NAMES[@]}"; do
  entry="$CACHE_ROOT/$n-${KEY[$n]}"
  if [[ -f "$entry/.complete" ]]; then
    log "$n: cached ($entry)"
    continue
  fi
  rm -rf --one-file-system "$entry"
  log "$n: building ${REF[$n]} (key ${KEY[$n]})"
  start=$SECONDS
  tmp=$(new_tmp "$n-${KEY[$n]}")
  "build_$n" "$tmp"
  printf 'build_seconds %s\n' "$((SECONDS - start))" >>"$tmp/info.txt"
  touch "$tmp/.complete"
  mv -T "$tmp" "$entry"
  log "$n: built in $((SECONDS - start))s"
done

tmp=$(new_tmp "$SET_KEY")
{
  printf '# name\treference\tmanifest digest\tarchive\tarchive bytes\n'
  for n in "${NAMES[@]}"; do
    entry="$CACHE_ROOT/$n-${KEY[$n]}"
    ln "$entry/image.tar" "$tmp/$n.tar" 2>/dev/null || cp "$entry/image.tar" "$tmp/$n.tar"
    printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$(cat "$entry/reference")" "$(cat "$entry/digest")" \
      "$n.tar" "$(stat -c %s "$entry/image.tar")"
  done
} >"$tmp/images.tsv"
touch "$tmp/.complete"
mv -T "$tmp" "$TARGET"
TMPS=()
log "image set ready in $((SECONDS - TOTAL_START))s: $TARGET"
echo "$TARGET"
