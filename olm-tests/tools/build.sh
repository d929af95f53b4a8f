#!/usr/bin/env bash
# Builds the pinned Go tools the OLM tests need (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok, kwokctl, opm, operator-sdk,
# olm, catalog) plus OLM's CRD YAMLs into a content-addressed cache directory
# and prints that directory as the LAST line of stdout:
#
#   dir=$(olm-tests/tools/build.sh)        # build if needed, then print
#   olm-tests/tools/build.sh --print-dir   # print only; exit 1 if not built
#
# Cache layout (see README.md):
#   ${LOCUST_TOOLS_CACHE:-$HOME/.cache/locust-k8s-operator/tools}/
#     .lock                 flock(1) lock serialising builds
#     <key>/                key = sha256(tool go.mod/go.sum/main.go, this
#       .complete             script, `go version`)[:16]
#       bin/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,
#            kwok,kwokctl,opm,operator-sdk,olm,catalog}
#       crds/olm/*.yaml
#       versions.txt
#
# Only Go (and gcc, for opm's sqlite cgo) is required. All module versions
# come from the committed go.mod/go.sum files of the wrapper modules in this
# directory (read-only module mode: nothing is re-resolved).
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT="$TOOLS_DIR/$(basename "${BASH_SOURCE[0]}")"
CACHE_ROOT=${LOCUST_TOOLS_CACHE:-$HOME/.cache/locust-k8s-operator/tools}
MODULES=(kube etcd kwok opm operator-sdk olm)
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok kwokctl opm operator-sdk olm catalog)

usage() {
  sed -n '2,12p' "$SCRIPT" | sed 's/^# \{0,1\}//'
}

PRINT_ONLY=0
case "${1:-}" in
  "") ;;
  --print-dir) PRINT_ONLY=1 ;;
  -h|--help) usage; exit 0 ;;
  *) echo "build.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac

log() { printf '[%s] tools: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

command -v go >/dev/null 2>&1 || { echo "build.sh: go not found in PATH" >&2; exit 1; }

# Never let a dependency's go/toolchain line trigger a toolchain download
# (there is nowhere to download one from); fail clearly instead.
export GOTOOLCHAIN=local
# The wrapper modules live in a git work tree that may have no commits yet;
# VCS stamping is pointless for these binaries. Keep any caller GOFLAGS.
case " ${GOFLAGS:-} " in
  *" -buildvcs="*) ;;
  *) export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false" ;;
esac

# The compiler spends a fifth of its time in GC on these huge dependency
# trees; GOGC=400 cut a cold kwok build's CPU time by ~20% while the largest
# compile process of the kube build stayed under 0.7 GB. Callers may override.
export GOGC=${GOGC:-400}

GO_VERSION=$(go version)

# --- cache key -------------------------------------------------------------
compute_key() {
  {
    local m f
    for m in "${MODULES[@]}"; do
      for f in go.mod go.sum main.go; do
        if [[ -f "$TOOLS_DIR/$m/$f" ]]; then
          printf '%s/%s %s\n' "$m" "$f" "$(sha256sum <"$TOOLS_DIR/$m/$f" | cut -c1-64)"
        fi
      done
    done
    printf 'build.sh %s\n' "$(sha256sum <"$SCRIPT" | cut -c1-64)"
    printf '%s\n' "$GO_VERSION"
  } | sha256sum | cut -c1-16
}
KEY=$(compute_key)
TARGET="$CACHE_ROOT/$KEY"

if [[ -f "$TARGET/.complete" ]]; then
  echo "$TARGET"
  exit 0
fi
if [[ $PRINT_ONLY == 1 ]]; then
  echo "build.sh: tools not built yet (run $SCRIPT)" >&2
  echo "$TARGET"
  exit 1
fi

# --- build (serialised by an exclusive lock) --------------------------------
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_ROOT/.lock; waiting for it"
  flock 9
fi
# Someone else may have finished the same build while we waited.
if [[ -f "$TARGET/.complete" ]]; then
  log "built by a concurrent run"
  echo "$TARGET"
  exit 0
fi
# A target without .complete, or any .tmp-* dir, can only be debris of a
# killed build: complete trees are renamed into place, and we hold the lock.
rm -rf "$TARGET" "$CACHE_ROOT"/.tmp-*

TMP=$(mktemp -d "$CACHE_ROOT/.tmp-$KEY.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 755 "$TMP"  # mktemp -d creates 0700
mkdir -p "$TMP/bin" "$TMP/crds/olm"
BIN="$TMP/bin"

TOTAL_START=$(date +%s)
log "cache miss: building tools into $TARGET (key $KEY, $GO_VERSION, $(nproc) cpus)"
log "GOMODCACHE=$(go env GOMODCACHE) GOCACHE=$(go env GOCACHE)"

# mod_field MODULE_DIR MODULE_PATH TEMPLATE: a field of a dependency as
# selected by the wrapper module's committed go.mod.
mod_field() {
  (cd "$TOOLS_DIR/$1" && go list -m -f "$3" "$2")
}
mod_version() { mod_field "$1" "$2" '{{.Version}}'; }
mod_time() { mod_field "$1" "$2" '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}'; }

# gobuild MODULE CGO TAGS LDFLAGS-X... -- PACKAGES...: one `go build` per
# module so the main packages of a module share compilation.
gobuild() {
  local mod=$1 cgo=$2 tags=$3; shift 3
  local ldx=()
  while [[ $1 != -- ]]; do ldx+=("-X" "$1"); shift; done
  shift
  local start=$SECONDS
  (
    cd "$TOOLS_DIR/$mod"
    CGO_ENABLED=$cgo go build -trimpath ${tags:+-tags "$tags"} \
      -ldflags "-s -w ${ldx[*]}" -o "$BIN/" "$@"
  )
  log "  done in $((SECONDS - start))s"
}

# --- kube-apiserver, kube-controller-manager, kube-scheduler -----------------
K8S_VERSION=$(mod_version kube k8s.io/kubernetes)
K8S_DATE=$(mod_time kube k8s.io/kubernetes)
[[ $K8S_VERSION =~ ^v([0-9]+)\.([0-9]+)\. ]] || { echo "bad k8s version $K8S_VERSION" >&2; exit 1; }
K8S_MAJOR=${BASH_REMATCH[1]} K8S_MINOR=${BASH_REMATCH[2]}
k8s_version_x=()
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_version_x+=(
    "$p.gitVersion=$K8S_VERSION" "$p.gitMajor=$K8S_MAJOR" "$p.gitMinor=$K8S_MINOR"
    "$p.gitCommit=unknown" "$p.gitTreeState=clean" "$p.buildDate=${K8S_DATE:-1970-01-01T00:00:00Z}"
  )
done
log "building kube-apiserver kube-controller-manager kube-scheduler $K8S_VERSION ... (first build takes ~6-9 minutes on 2 cores)"
gobuild kube 0 "" "${k8s_version_x[@]}" -- \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler

# --- etcd --------------------------------------------------------------------
ETCD_VERSION=$(mod_version etcd go.etcd.io/etcd/server/v3)
log "building etcd $ETCD_VERSION ... (first build takes ~1 minute)"
gobuild etcd 0 "" -- .   # main.go; the binary is named after the module: etcd

# --- kwok, kwokctl -------------------------------------------------------------
KWOK_VERSION=$(mod_version kwok sigs.k8s.io/kwok)
log "building kwok kwokctl $KWOK_VERSION ... (first build takes ~2 minutes)"
gobuild kwok 0 "" \
  "sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
  "sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}" -- \
  sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl

# --- opm (cgo: mattn/go-sqlite3) ------------------------------------------------
OPM_VERSION=$(mod_version opm github.com/operator-framework/operator-registry)
OPM_DATE=$(mod_time opm github.com/operator-framework/operator-registry)
log "building opm $OPM_VERSION ... (first build takes ~2-3 minutes; cgo sqlite)"
gobuild opm 1 json1,containers_image_openpgp \
  "github.com/operator-framework/operator-registry/cmd/opm/version.opmVersion=$OPM_VERSION" \
  "github.com/operator-framework/operator-registry/cmd/opm/version.buildDate=$OPM_DATE" -- \
  github.com/operator-framework/operator-registry/cmd/opm

# --- operator-sdk -------------------------------------------------------------
SDK_VERSION=$(mod_version operator-sdk github.com/operator-framework/operator-sdk)
SDK_K8S=$(mod_version operator-sdk k8s.io/client-go)
SDK_K8S="v1.${SDK_K8S#v0.}"
log "building operator-sdk $SDK_VERSION ... (first build takes ~2 minutes)"
gobuild operator-sdk 0 containers_image_openpgp \
  "github.com/operator-framework/operator-sdk/internal/version.Version=$SDK_VERSION" \
  "github.com/operator-framework/operator-sdk/internal/version.GitVersion=$SDK_VERSION" \
  "github.com/operator-framework/operator-sdk/internal/version.KubernetesVersion=$SDK_K8S" \
  "github.com/operator-framework/operator-sdk/internal/version.ImageVersion=$SDK_VERSION" -- \
  github.com/operator-framework/operator-sdk/cmd/operator-sdk

# --- olm, catalog + OLM CRDs ----------------------------------------------------
OLM_VERSION=$(mod_version olm github.com/operator-framework/operator-lifecycle-manager)
log "building olm catalog $OLM_VERSION ... (first build takes ~2 minutes)"
gobuild olm 0 json1 \
  "github.com/operator-framework/operator-lifecycle-manager/pkg/version.OLMVersion=$OLM_VERSION" -- \
  github.com/operator-framework/operator-lifecycle-manager/cmd/olm \
  github.com/operator-framework/operator-lifecycle-manager/cmd/catalog

# The CRDs OLM ships are the ones of the operator-framework/api version that
# OLM's own go.mod requires; insist that it is also the one selected here.
OLM_GOMOD=$(mod_field olm github.com/operator-framework/operator-lifecycle-manager '{{.GoMod}}')
API_REQUIRED=$(awk '$1 == "github.com/operator-framework/api" { print $2; exit }' "$OLM_GOMOD")
API_VERSION=$(mod_version olm github.com/operator-framework/api)
if [[ "$API_REQUIRED" != "$API_VERSION" ]]; then
  echo "build.sh: OLM $OLM_VERSION requires operator-framework/api $API_REQUIRED but olm/go.mod selects $API_VERSION" >&2
  exit 1
fi
API_DIR=$(cd "$TOOLS_DIR/olm" && go mod download -json github.com/operator-framework/api |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d "$API_DIR/crds" ]] || { echo "build.sh: no crds/ in $API_DIR" >&2; exit 1; }
cp "$API_DIR"/crds/*.yaml "$TMP/crds/olm/"
chmod -R u+w,a+r "$TMP/crds"
log "copied $(ls "$TMP/crds/olm" | wc -l) OLM CRDs from github.com/operator-framework/api@$API_VERSION"

# --- check, record, publish ------------------------------------------------------
for b in "${BINARIES[@]}"; do
  [[ -x "$BIN/$b" ]] || { echo "build.sh: missing binary $b" >&2; exit 1; }
done
{
  echo "# Built by olm-tests/tools/build.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); key $KEY"
  echo "go                      $GO_VERSION"
  echo "etcd                    go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  echo "kube-apiserver          k8s.io/kubernetes $K8S_VERSION"
  echo "kube-controller-manager k8s.io/kubernetes $K8S_VERSION"
  echo "kube-scheduler          k8s.io/kubernetes $K8S_VERSION"
  echo "kwok                    sigs.k8s.io/kwok $KWOK_VERSION"
  echo "kwokctl                 sigs.k8s.io/kwok $KWOK_VERSION"
  echo "opm                     github.com/operator-framework/operator-registry $OPM_VERSION"
  echo "operator-sdk            github.com/operator-framework/operator-sdk $SDK_VERSION"
  echo "olm                     github.com/operator-framework/operator-lifecycle-manager $OLM_VERSION"
  echo "catalog                 github.com/operator-framework/operator-lifecycle-manager $OLM_VERSION"
  echo "crds/olm                github.com/operator-framework/api $API_VERSION"
} >"$TMP/versions.txt"
touch "$TMP/.complete"
mv -T "$TMP" "$TARGET"
trap - EXIT
log "all tools built in $(( $(date +%s) - TOTAL_START ))s: $TARGET"
echo "$TARGET"
