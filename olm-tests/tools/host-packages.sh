#!/usr/bin/env bash
# Installs the few Debian packages that the tool build and the real-node
# tools need and that cannot be built with Go. Checks with dpkg-query first;
# only when something is missing does it run `apt-get update` (once) and
# `apt-get install -y --no-install-recommends` for the missing packages.
#
#   olm-tests/tools/host-packages.sh           # install what is missing (root)
#   olm-tests/tools/host-packages.sh --check   # report only; exit 1 if missing
#
# All output goes to stderr (build.sh prints its result on stdout). Exits
# non-zero with a clear message when something is missing and it is not root.
set -euo pipefail

# Each entry: why it is needed. Everything else the tests use is built from
# pinned Go modules by build.sh.
PACKAGES=(
  # runc is built with cgo and the `seccomp` tag: libseccomp-golang and
  # runc's libcontainer/seccomp/patchbpf link libseccomp (headers + .so).
  libseccomp-dev
  # Those two packages find libseccomp through `#cgo pkg-config: libseccomp`.
  pkg-config
  # cgo needs a C compiler and libc headers: opm (mattn/go-sqlite3) and runc
  # (libcontainer/nsenter is C, plus libseccomp).
  gcc
  libc6-dev
  # The kubelet and kube-proxy (iptables mode) run iptables, ip6tables,
  # iptables-save and iptables-restore; they are C programs, not buildable
  # with Go.
  iptables
  # The real-node cluster code (olm-tests/src/cluster) runs `ip` to set up
  # the node's network namespace (lo, veth); usually preinstalled.
  iproute2
  # olm-tests/images/build.sh: mmdebstrap builds the Debian root file system
  # of the Locust image; musl-gcc (musl-tools) links the operator image's
  # static musl binary. Neither is in a fresh Debian 12 / polyglot image.
  mmdebstrap
  musl-tools
  # olm-tests/images/build.sh: the opm image (OLM's catalog, unpack and
  # operator-sdk's registry pods run `sh -c`, `cp`, `gzip -d`) takes its
  # static /bin/busybox from here.
  busybox-static
  # actionlint (olm-tests/tests/release_files.rs) runs shellcheck on the
  # workflows' `run:` scripts when it is in PATH; without it those scripts
  # would go unchecked.
  shellcheck
)
# Deliberately not listed:
# * conntrack: Kubernetes 1.36's kube-proxy clears conntrack entries through
#   netlink (pkg/proxy/conntrack uses vishvananda/netlink) and never runs the
#   conntrack CLI.
# * containerd, runc, containernetworking-plugins, coredns: built from Go
#   modules by build.sh (Debian 12's containerd 1.6 is too old for
#   Kubernetes 1.36 anyway).
# * libseccomp2 (runc's run-time library): a dependency of libseccomp-dev.

CHECK_ONLY=0
case "${1:-}" in
  "") ;;
  --check) CHECK_ONLY=1 ;;
  -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "host-packages.sh: unknown argument: $1" >&2; exit 2 ;;
esac

say() { printf '[%s] host-packages: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

command -v dpkg-query >/dev/null 2>&1 || {
  echo "host-packages.sh: dpkg-query not found; this script supports Debian (12) only." >&2
  echo "  Needed packages: ${PACKAGES[*]}" >&2
  exit 1
}

missing=()
for p in "${PACKAGES[@]}"; do
  # db:Status-Status is "installed" only for a fully installed package
  # ("config-files", "half-installed", ... or unknown all count as missing).
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  say "all present: ${PACKAGES[*]}"
  exit 0
fi
if [[ $CHECK_ONLY == 1 ]]; then
  say "missing: ${missing[*]}"
  exit 1
fi
if [[ $(id -u) != 0 ]]; then
  echo "host-packages.sh: missing Debian packages: ${missing[*]}" >&2
  echo "  not running as root, so they cannot be installed here; run as root:" >&2
  echo "    apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

say "missing: ${missing[*]}; installing"
export DEBIAN_FRONTEND=noninteractive
apt-get update >&2
apt-get install -y --no-install-recommends "${missing[@]}" >&2

still=()
for p in "${missing[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ $status == installed ]] || still+=("$p")
done
if [[ ${#still[@]} -ne 0 ]]; then
  echo "host-packages.sh: still not installed after apt-get install: ${still[*]}" >&2
  exit 1
fi
say "installed: ${missing[*]}"
