#!/usr/bin/env bash
# Smoke-tests the tools built by build.sh: every binary answers its version or
# help flag (the real-node tools too: kubelet, kube-proxy, containerd, ctr,
# containerd-shim-runc-v2, runc with seccomp, coredns, and each CNI plugin
# answers CNI_COMMAND=VERSION), and etcd starts on random 127.0.0.1 ports,
# reports /health, and stops. Every process started here is killed before exit.
#
#   olm-tests/tools/smoke.sh [TOOLS_DIR]   # default: build.sh --print-dir
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${1:-$("$HERE/build.sh" --print-dir | tail -n1)}
BIN="$DIR/bin"
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

# check NAME EXPECTED-SUBSTRING CMD...
check() {
  local name=$1 want=$2; shift 2
  local out
  out=$("$@" 2>&1) || fail "$name: '$*' exited $?: $out"
  grep -qF -- "$want" <<<"$out" || fail "$name: '$*' output lacks '$want': $out"
  echo "smoke: ok   $name: $(grep -m1 -F -- "$want" <<<"$out")"
}
ver() { awk -v b="$1" '$1 == b { print $NF }' "$DIR/versions.txt"; }

check kube-apiserver          "Kubernetes $(ver kube-apiserver)" "$BIN/kube-apiserver" --version
check kube-controller-manager "Kubernetes $(ver kube-controller-manager)" "$BIN/kube-controller-manager" --version
check kube-scheduler          "Kubernetes $(ver kube-scheduler)" "$BIN/kube-scheduler" --version
check etcd                    "etcd Version: $(ver etcd | sed 's/^v//')" "$BIN/etcd" --version
check kwok                    "$(ver kwok | sed 's/^v//')" "$BIN/kwok" --version
check kwokctl                 "$(ver kwokctl | sed 's/^v//')" "$BIN/kwokctl" --version
check opm                     "$(ver opm)" "$BIN/opm" version
check operator-sdk            "$(ver operator-sdk)" "$BIN/operator-sdk" version
check olm                     "$(ver olm)" "$BIN/olm" --version
check catalog                 "Usage" "$BIN/catalog" --help

# --- real-node tools ----------------------------------------------------------
check kubelet                 "Kubernetes $(ver kubelet)" "$BIN/kubelet" --version
check kube-proxy              "Kubernetes $(ver kube-proxy)" "$BIN/kube-proxy" --version
check kubectl                 "Client Version: $(ver kubectl)" "$BIN/kubectl" version --client
check helm                    "$(ver helm)" "$BIN/helm" version --short
check containerd              "containerd github.com/containerd/containerd/v2 $(ver containerd)" "$BIN/containerd" --version
check ctr                     "ctr github.com/containerd/containerd/v2 $(ver ctr)" "$BIN/ctr" --version
check containerd-shim-runc-v2 "Version:  $(ver containerd-shim-runc-v2)" "$BIN/containerd-shim-runc-v2" -v
check runc                    "runc version $(ver runc | sed 's/^v//')" "$BIN/runc" --version
check runc-libseccomp         "libseccomp: " "$BIN/runc" --version
# `runc features` (JSON): the seccomp section must say "enabled": true, which
# only a build with the seccomp tag and libseccomp does.
out=$("$BIN/runc" features 2>&1) || fail "runc features exited $?: $out"
tr -d ' \n\t' <<<"$out" | grep -q '"seccomp":{"enabled":true' ||
  fail "runc features: seccomp not enabled: $out"
echo "smoke: ok   runc features: seccomp enabled, $(tr -d ' \n\t' <<<"$out" | grep -o '"io.github.seccomp.libseccomp.version":"[^"]*"')"
check coredns                 "CoreDNS-$(ver coredns | sed 's/^v//')" "$BIN/coredns" -version
for p in bridge host-local loopback portmap; do
  [[ -x "$DIR/cni/$p" ]] || fail "missing CNI plugin $DIR/cni/$p"
  # CNI_COMMAND=VERSION: the spec's version handshake (JSON on stdout).
  check "cni/$p VERSION"      '"supportedVersions":' env CNI_COMMAND=VERSION "$DIR/cni/$p"
  # No CNI_COMMAND: the "about" line with the stamped release on stderr.
  check "cni/$p about"        "CNI $p plugin $(ver "cni/$p")" env -u CNI_COMMAND "$DIR/cni/$p"
done
extra=$(find "$DIR/cni" -mindepth 1 -maxdepth 1 ! -name bridge ! -name host-local ! -name loopback ! -name portmap)
[[ -z $extra ]] || fail "cni/ holds more than the plugins: $extra"
n=$(find "$DIR/crds/olm" -name '*.yaml' | wc -l)
[[ $n -ge 8 ]] || fail "only $n OLM CRDs in $DIR/crds/olm"
echo "smoke: ok   crds/olm: $n CRDs"

# --- etcd on random loopback ports -------------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
random_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    port_free "$p" && { echo "$p"; return; }
  done
}
# http_get PORT PATH: minimal HTTP/1.0 GET with bash's /dev/tcp (no curl needed)
http_get() {
  local body
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  body=$(cat <&3) || true
  exec 3>&-
  printf '%s' "$body"
}

WORK=$(mktemp -d)
ETCD_PID=
cleanup() {
  if [[ -n $ETCD_PID ]] && kill -0 "$ETCD_PID" 2>/dev/null; then
    kill "$ETCD_PID" 2>/dev/null || true
    wait "$ETCD_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

started=0
for attempt in 1 2 3; do
  CPORT=$(random_port)
  PPORT=$(random_port)
  [[ $CPORT != "$PPORT" ]] || continue
  "$BIN/etcd" --name smoke --data-dir "$WORK/data" \
    --listen-client-urls "http://127.0.0.1:$CPORT" --advertise-client-urls "http://127.0.0.1:$CPORT" \
    --listen-peer-urls "http://127.0.0.1:$PPORT" --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
    --initial-cluster "smoke=http://127.0.0.1:$PPORT" --log-level warn >"$WORK/etcd.log" 2>&1 &
  ETCD_PID=$!
  for _ in $(seq 1 100); do
    if ! kill -0 "$ETCD_PID" 2>/dev/null; then break; fi
    if http_get "$CPORT" /health 2>/dev/null | grep -q '"health":"true"'; then started=1; break; fi
    sleep 0.1
  done
  [[ $started == 1 ]] && break
  echo "smoke: etcd attempt $attempt did not become healthy; log:" >&2
  cat "$WORK/etcd.log" >&2
  kill "$ETCD_PID" 2>/dev/null || true
  wait "$ETCD_PID" 2>/dev/null || true
  ETCD_PID=
  rm -rf "$WORK/data"
done
[[ $started == 1 ]] || fail "etcd never reported healthy"
echo "smoke: ok   etcd /health on 127.0.0.1:$CPORT: $(http_get "$CPORT" /health | tail -n1)"
kill "$ETCD_PID"
wait "$ETCD_PID" 2>/dev/null || true
ETCD_PID=
echo "smoke: all checks passed"
