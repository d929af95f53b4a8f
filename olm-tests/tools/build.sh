#!/usr/bin/env bash
# Builds the pinned Go tools the OLM tests need (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok, kwokctl, opm,
# operator-sdk, olm, catalog), the ones a real kubelet node needs (kubelet, kube-proxy,
# containerd, ctr, containerd-shim-runc-v2, runc, coredns, CNI plugins), the
# local OCI registry and its client (registry, crane), actionlint (the
# GitHub workflows' linter), helm (Helm v4, for the chart), the static binaries
# that go into the opm image (opm, grpc_health_probe, cpb) plus OLM's CRD
# YAMLs into a content-addressed cache directory and prints that directory as
# the LAST line of stdout:
#
#   dir=$(olm-tests/tools/build.sh)        # build if needed, then print
#   olm-tests/tools/build.sh --print-dir   # print only; exit 1 if not built
#
# Cache layout (see README.md):
#   ${LOCUST_TOOLS_CACHE:-$HOME/.cache/locust-k8s-operator/tools}/
#     .lock                 flock(1) lock serialising builds
#     <key>/                key = sha256(tool go.mod/go.sum/main.go, this
#       .complete             script, host-packages.sh, `go version`)[:16]
#       bin/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,
#            kubelet,kube-proxy,kubectl,kwok,kwokctl,opm,operator-sdk,olm,catalog,
#            containerd,ctr,containerd-shim-runc-v2,runc,coredns,registry,crane,
#            actionlint,helm}
#       cni/{bridge,host-local,loopback,portmap}   (a CNI bin dir: plugins only)
#       image-bin/{opm,grpc_health_probe,cpb,scorecard-test}  (static, for images)
#       kube-min/{kube-apiserver,kube-controller-manager,kube-scheduler}
#                             the oldest supported Kubernetes (CSV minKubeVersion)
#       crds/olm/*.yaml
#       versions.txt
#
# Requires Go (1.26); the Debian packages (gcc for cgo, libseccomp-dev +
# pkg-config for runc; iptables for the kubelet and kube-proxy at run time;
# a few for the real-node tests and images, see host-packages.sh) are
# installed by host-packages.sh, which runs first on a cache miss (as root,
# or it fails with a clear message). All module versions come from the committed
# go.mod/go.sum files of the wrapper modules in this directory (read-only
# module mode: nothing is re-resolved).
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT="$TOOLS_DIR/$(basename "${BASH_SOURCE[0]}")"
CACHE_ROOT=${LOCUST_TOOLS_CACHE:-$HOME/.cache/locust-k8s-operator/tools}
MODULES=(kube kube-min etcd kwok opm operator-sdk olm containerd runc cni coredns registry crane grpc-health-probe actionlint helm)
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
          kwok kwokctl opm operator-sdk olm catalog
          containerd ctr containerd-shim-runc-v2 runc coredns registry crane actionlint helm)
CNI_PLUGINS=(bridge host-local loopback portmap)
IMAGE_BINARIES=(opm grpc_health_probe cpb scorecard-test)
MIN_KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)

usage() {
  sed -n '2,10p' "$SCRIPT" | sed 's/^# \{0,1\}//'
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
    printf 'host-packages.sh %s\n' "$(sha256sum <"$TOOLS_DIR/host-packages.sh" | cut -c1-64)"
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
mkdir -p "$TMP/bin" "$TMP/cni" "$TMP/image-bin" "$TMP/kube-min" "$TMP/crds/olm"
BIN="$TMP/bin"

TOTAL_START=$(date +%s)
log "cache miss: building tools into $TARGET (key $KEY, $GO_VERSION, $(nproc) cpus)"
log "GOMODCACHE=$(go env GOMODCACHE) GOCACHE=$(go env GOCACHE)"

# Debian packages first (fail fast, before any long build): gcc/libc6-dev
# for cgo (opm, runc), libseccomp-dev + pkg-config for runc, iptables for
# the kubelet and kube-proxy at run time, iproute2, mmdebstrap and musl-tools
# for the real-node tests and their images (see host-packages.sh).
"$TOOLS_DIR/host-packages.sh" >&2

# mod_field MODULE_DIR MODULE_PATH TEMPLATE: a field of a dependency as
# selected by the wrapper module's committed go.mod.
mod_field() {
  (cd "$TOOLS_DIR/$1" && go list -m -f "$3" "$2")
}
mod_version() { mod_field "$1" "$2" '{{.Version}}'; }
mod_time() { mod_field "$1" "$2" '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}'; }

# gobuild MODULE CGO TAGS LDFLAGS-X... -- PACKAGES...: one `go build` per
# module so the main packages of a module share compilation. Binaries go to
# $OUT (default: $BIN).
gobuild() {
  local mod=$1 cgo=$2 tags=$3; shift 3
  local ldx=()
  while [[ $1 != -- ]]; do ldx+=("-X" "$1"); shift; done
  shift
  local start=$SECONDS
  (
    cd "$TOOLS_DIR/$mod"
    CGO_ENABLED=$cgo go build -trimpath ${tags:+-tags "$tags"} \
      -ldflags "-s -w ${ldx[*]}" -o "${OUT:-$BIN}/" "$@"
  )
  log "  done in $((SECONDS - start))s"
}

# --- kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl
# k8s_stamp MODULE_DIR: the -X version stamps (component-base and client-go)
# for the k8s.io/kubernetes that MODULE_DIR pins; sets K8S_VERSION.
k8s_stamp() {
  K8S_VERSION=$(mod_version "$1" k8s.io/kubernetes)
  local date major minor p
  date=$(mod_time "$1" k8s.io/kubernetes)
  [[ $K8S_VERSION =~ ^v([0-9]+)\.([0-9]+)\. ]] || { echo "bad k8s version $K8S_VERSION" >&2; exit 1; }
  major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  k8s_version_x=()
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_version_x+=(
      "$p.gitVersion=$K8S_VERSION" "$p.gitMajor=$major" "$p.gitMinor=$minor"
      "$p.gitCommit=unknown" "$p.gitTreeState=clean" "$p.buildDate=${date:-1970-01-01T00:00:00Z}"
    )
  done
}
k8s_stamp kube
log "building kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl $K8S_VERSION ... (first build takes ~4-9 minutes on 2 cores)"
gobuild kube 0 "" "${k8s_version_x[@]}" -- \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kube-proxy \
  k8s.io/kubernetes/cmd/kubectl
K8S_CURRENT=$K8S_VERSION

# The control plane of the oldest Kubernetes the CSV's minKubeVersion claims
# (a directory of its own: same binary names). kwok nodes only, so no kubelet.
k8s_stamp kube-min
K8S_MIN=$K8S_VERSION
log "building the oldest supported control plane (${MIN_KUBE_BINARIES[*]}) $K8S_MIN ... (first build takes ~5-10 minutes on 2 cores)"
OUT="$TMP/kube-min" gobuild kube-min 0 "" "${k8s_version_x[@]}" -- \
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
  "sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_CURRENT#v}" -- \
  sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl

# --- opm (cgo: mattn/go-sqlite3) ------------------------------------------------
OPM_VERSION=$(mod_version opm github.com/operator-framework/operator-registry)
OPM_DATE=$(mod_time opm github.com/operator-framework/operator-registry)
log "building opm $OPM_VERSION ... (first build takes ~2-3 minutes; cgo sqlite)"
gobuild opm 1 json1,containers_image_openpgp \
  "github.com/operator-framework/operator-registry/cmd/opm/version.opmVersion=$OPM_VERSION" \
  "github.com/operator-framework/operator-registry/cmd/opm/version.buildDate=$OPM_DATE" -- \
  github.com/operator-framework/operator-registry/cmd/opm
# The opm of the opm image (OLM's registry and unpack pods, operator-sdk's
# registry pod) must be static: CGO_ENABLED=0 drops mattn/go-sqlite3 (only
# the deprecated sqlite index commands need it; `opm serve` of a file-based
# catalog and `opm alpha bundle extract` do not), netgo/osusergo keep name
# and user lookups in Go (a libc-less image has no NSS).
log "building the static opm $OPM_VERSION for the opm image ..."
OUT="$TMP/image-bin" gobuild opm 0 containers_image_openpgp,netgo,osusergo \
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
# scorecard-test: the program of the scorecard's test image
# (quay.io/operator-framework/scorecard-test:<version>), from the same module.
log "building scorecard-test $SDK_VERSION for the scorecard-test image ..."
OUT="$TMP/image-bin" gobuild operator-sdk 0 containers_image_openpgp \
  "github.com/operator-framework/operator-sdk/internal/version.Version=$SDK_VERSION" \
  "github.com/operator-framework/operator-sdk/internal/version.GitVersion=$SDK_VERSION" -- \
  github.com/operator-framework/operator-sdk/images/scorecard-test

# --- olm, catalog + OLM CRDs ----------------------------------------------------
OLM_VERSION=$(mod_version olm github.com/operator-framework/operator-lifecycle-manager)
log "building olm catalog $OLM_VERSION ... (first build takes ~2 minutes)"
gobuild olm 0 json1 \
  "github.com/operator-framework/operator-lifecycle-manager/pkg/version.OLMVersion=$OLM_VERSION" -- \
  github.com/operator-framework/operator-lifecycle-manager/cmd/olm \
  github.com/operator-framework/operator-lifecycle-manager/cmd/catalog
# cpb: what OLM's util image provides to the bundle-unpack Job (its `pull`
# container runs /util/cpb to copy the bundle's files out of the bundle image).
OUT="$TMP/image-bin" gobuild olm 0 "" -- github.com/operator-framework/operator-lifecycle-manager/util/cpb

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

# --- containerd, ctr, containerd-shim-runc-v2 -------------------------------------
# Tags as upstream's Makefile (urfave_cli_no_docs; the shim adds no_grpc) plus
# no_btrfs: the btrfs snapshotter (cmd/containerd/builtins/btrfs_linux.go,
# `!no_btrfs && cgo`) needs cgo and btrfs headers; CGO_ENABLED=0 drops it
# anyway, the tag says so explicitly. Stamped as upstream's Makefile does;
# there is no git revision in a module zip.
CTRD_VERSION=$(mod_version containerd github.com/containerd/containerd/v2)
ctrd_version_x=(
  "github.com/containerd/containerd/v2/version.Version=$CTRD_VERSION"
  "github.com/containerd/containerd/v2/version.Revision=unknown"
  "github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2"
)
log "building containerd ctr $CTRD_VERSION ... (first build takes ~1 minute)"
gobuild containerd 0 urfave_cli_no_docs,no_btrfs "${ctrd_version_x[@]}" -- \
  github.com/containerd/containerd/v2/cmd/containerd \
  github.com/containerd/containerd/v2/cmd/ctr
log "building containerd-shim-runc-v2 $CTRD_VERSION ..."
gobuild containerd 0 urfave_cli_no_docs,no_btrfs,no_grpc "${ctrd_version_x[@]}" -- \
  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2

# --- runc (cgo: libcontainer/nsenter, libseccomp) ------------------------------------
# Upstream's default tags minus libpathrs (a Rust C library, not packaged in
# Debian 12; without the tag runc uses its Go pathrs-lite). The version is
# embedded from the module's VERSION file (go:embed), so nothing to stamp.
RUNC_VERSION=$(mod_version runc github.com/opencontainers/runc)
log "building runc $RUNC_VERSION ... (cgo + libseccomp; first build takes ~10-30 seconds)"
gobuild runc 1 seccomp,urfave_cli_no_docs -- github.com/opencontainers/runc

# --- CNI plugins (a directory of their own: a CNI bin dir holds only plugins) ---------
CNI_VERSION=$(mod_version cni github.com/containernetworking/plugins)
log "building CNI plugins ${CNI_PLUGINS[*]} $CNI_VERSION ... (first build takes ~5-30 seconds)"
OUT="$TMP/cni" gobuild cni 0 "" \
  "github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_VERSION" -- \
  github.com/containernetworking/plugins/plugins/main/bridge \
  github.com/containernetworking/plugins/plugins/ipam/host-local \
  github.com/containernetworking/plugins/plugins/main/loopback \
  github.com/containernetworking/plugins/plugins/meta/portmap

# --- CoreDNS (default plugin set) --------------------------------------------------------
# Tag grpcnotrace and CGO_ENABLED=0 as upstream's Makefile; gitTag makes
# `coredns -version` say the release (CoreDNS-1.15.0).
COREDNS_VERSION=$(mod_version coredns github.com/coredns/coredns)
log "building coredns $COREDNS_VERSION ... (first build takes ~2 minutes)"
gobuild coredns 0 grpcnotrace \
  "github.com/coredns/coredns/coremain.gitTag=$COREDNS_VERSION" \
  "github.com/coredns/coredns/coremain.GitCommit=unknown" -- \
  github.com/coredns/coredns

# --- the local OCI registry, crane, grpc_health_probe ---------------------------------------
REGISTRY_VERSION=$(mod_version registry github.com/distribution/distribution/v3)
log "building registry $REGISTRY_VERSION ... (first build takes ~1 minute)"
gobuild registry 0 "" \
  "github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION" \
  "github.com/distribution/distribution/v3/version.mainpkg=github.com/distribution/distribution/v3" -- \
  github.com/distribution/distribution/v3/cmd/registry
CRANE_VERSION=$(mod_version crane github.com/google/go-containerregistry)
log "building crane $CRANE_VERSION ..."
gobuild crane 0 "" \
  "github.com/google/go-containerregistry/cmd/crane/cmd.Version=$CRANE_VERSION" -- \
  github.com/google/go-containerregistry/cmd/crane
PROBE_VERSION=$(mod_version grpc-health-probe github.com/grpc-ecosystem/grpc-health-probe)
log "building grpc_health_probe $PROBE_VERSION ..."
OUT="$TMP/image-bin" gobuild grpc-health-probe 0 "" "main.versionTag=$PROBE_VERSION" -- \
  github.com/grpc-ecosystem/grpc-health-probe
mv "$TMP/image-bin/grpc-health-probe" "$TMP/image-bin/grpc_health_probe"

# --- actionlint (lints .github/workflows; runs shellcheck on their scripts) ------------------
ACTIONLINT_VERSION=$(mod_version actionlint github.com/rhysd/actionlint)
log "building actionlint $ACTIONLINT_VERSION ..."
gobuild actionlint 0 "" "github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" -- \
  github.com/rhysd/actionlint/cmd/actionlint

# --- helm (Helm v4: lints and renders the chart) ----------------------------------------------
# CGO_ENABLED=0 as upstream's Makefile; internal/version.version stamped as
# its release build does (metadata stays empty: no "+unreleased"). gitCommit
# and gitTreeState are left empty (a module zip carries no git revision;
# any gitCommit would make `helm version --short` print "v4.3.2+g<commit>").
HELM_VERSION=$(mod_version helm helm.sh/helm/v4)
log "building helm $HELM_VERSION ... (first build takes ~1.5 minutes)"
gobuild helm 0 "" "helm.sh/helm/v4/internal/version.version=$HELM_VERSION" -- \
  helm.sh/helm/v4/cmd/helm

# --- check, record, publish ------------------------------------------------------
for b in "${BINARIES[@]}"; do
  [[ -x "$BIN/$b" ]] || { echo "build.sh: missing binary $b" >&2; exit 1; }
done
for p in "${CNI_PLUGINS[@]}"; do
  [[ -x "$TMP/cni/$p" ]] || { echo "build.sh: missing CNI plugin $p" >&2; exit 1; }
done
for b in "${MIN_KUBE_BINARIES[@]}"; do
  [[ -x "$TMP/kube-min/$b" ]] || { echo "build.sh: missing kube-min/$b" >&2; exit 1; }
done
for b in "${IMAGE_BINARIES[@]}"; do
  [[ -x "$TMP/image-bin/$b" ]] || { echo "build.sh: missing image binary $b" >&2; exit 1; }
  if command -v readelf >/dev/null 2>&1 && readelf -lW "$TMP/image-bin/$b" | grep -q INTERP; then
    echo "build.sh: image-bin/$b is dynamically linked" >&2; exit 1
  fi
done
extra=$(cd "$TMP/cni" && ls -A | grep -vxF -f <(printf '%s\n' "${CNI_PLUGINS[@]}") || true)
[[ -z $extra ]] || { echo "build.sh: unexpected files in cni/: $extra" >&2; exit 1; }
{
  echo "# Built by olm-tests/tools/build.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); key $KEY"
  echo "go                      $GO_VERSION"
  echo "etcd                    go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  echo "kube-apiserver          k8s.io/kubernetes $K8S_CURRENT"
  echo "kube-controller-manager k8s.io/kubernetes $K8S_CURRENT"
  echo "kube-scheduler          k8s.io/kubernetes $K8S_CURRENT"
  echo "kubelet                 k8s.io/kubernetes $K8S_CURRENT"
  echo "kube-proxy              k8s.io/kubernetes $K8S_CURRENT"
  echo "kubectl                 k8s.io/kubernetes $K8S_CURRENT"
  for b in "${MIN_KUBE_BINARIES[@]}"; do
    printf '%-23s k8s.io/kubernetes %s (oldest supported)\n' "kube-min/$b" "$K8S_MIN"
  done
  echo "kwok                    sigs.k8s.io/kwok $KWOK_VERSION"
  echo "kwokctl                 sigs.k8s.io/kwok $KWOK_VERSION"
  echo "opm                     github.com/operator-framework/operator-registry $OPM_VERSION"
  echo "operator-sdk            github.com/operator-framework/operator-sdk $SDK_VERSION"
  echo "olm                     github.com/operator-framework/operator-lifecycle-manager $OLM_VERSION"
  echo "catalog                 github.com/operator-framework/operator-lifecycle-manager $OLM_VERSION"
  echo "crds/olm                github.com/operator-framework/api $API_VERSION"
  echo "containerd              github.com/containerd/containerd/v2 $CTRD_VERSION"
  echo "ctr                     github.com/containerd/containerd/v2 $CTRD_VERSION"
  echo "containerd-shim-runc-v2 github.com/containerd/containerd/v2 $CTRD_VERSION"
  echo "runc                    github.com/opencontainers/runc $RUNC_VERSION"
  echo "# runc: cgo, dynamically linked against libseccomp $(pkg-config --modversion libseccomp) (Debian libseccomp-dev $(dpkg-query -W -f='${Version}' libseccomp-dev))"
  for p in "${CNI_PLUGINS[@]}"; do
    printf 'cni/%-19s github.com/containernetworking/plugins %s\n' "$p" "$CNI_VERSION"
  done
  echo "coredns                 github.com/coredns/coredns $COREDNS_VERSION"
  echo "registry                github.com/distribution/distribution/v3 $REGISTRY_VERSION"
  echo "crane                   github.com/google/go-containerregistry $CRANE_VERSION"
  echo "actionlint              github.com/rhysd/actionlint $ACTIONLINT_VERSION"
  echo "helm                    helm.sh/helm/v4 $HELM_VERSION"
  echo "image-bin/opm           github.com/operator-framework/operator-registry $OPM_VERSION (static, CGO_ENABLED=0)"
  echo "image-bin/grpc_health_probe github.com/grpc-ecosystem/grpc-health-probe $PROBE_VERSION"
  echo "image-bin/cpb           github.com/operator-framework/operator-lifecycle-manager $OLM_VERSION"
  echo "image-bin/scorecard-test github.com/operator-framework/operator-sdk $SDK_VERSION"
} >"$TMP/versions.txt"
touch "$TMP/.complete"
mv -T "$TMP" "$TARGET"
trap - EXIT
log "all tools built in $(( $(date +%s) - TOTAL_START ))s: $TARGET"
echo "$TARGET"
