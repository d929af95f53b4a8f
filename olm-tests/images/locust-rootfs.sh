#!/usr/bin/env bash
# mmdebstrap customize hook of the Locust image (run by build.sh, on the host,
# as root, while mmdebstrap has /dev, /proc and /sys of the chroot set up):
#
#   locust-rootfs.sh ROOTFS WHEELS_DIR LOCUST_VERSION
#
# Creates the venv /opt/venv with locust==LOCUST_VERSION from the wheels in
# WHEELS_DIR (downloaded on the host: nothing is fetched from inside the chroot,
# which has neither this machine's CA bundle nor a need for one), adds the user
# locust (1000:1000, HOME /home/locust) and removes what a container never
# reads (docs, man pages, locales, logs, caches, pip itself).
#
# Never touches ROOTFS/dev, /proc or /sys: they are mounts at this point.
set -euo pipefail

ROOT=$1 WHEELS=$2 VERSION=$3
[[ -d $ROOT/etc && $ROOT != / ]] || { echo "locust-rootfs.sh: bad rootfs $ROOT" >&2; exit 1; }

in_root() {
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 HOME=/root PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$@"
}

# --- venv with Locust, offline ---------------------------------------------------
rm -rf "$ROOT/tmp/wheels"
cp -r "$WHEELS" "$ROOT/tmp/wheels"
in_root python3 -m venv /opt/venv
in_root /opt/venv/bin/pip install --quiet --no-index --find-links /tmp/wheels "locust==$VERSION"
# pip and setuptools were only needed to install; Locust does not import them
# (checked by build.sh's `locust --version` and olm-tests/images/smoke.sh's
# headless run). A read-only root file system could not `pip install` anyway.
in_root /opt/venv/bin/pip uninstall --quiet --yes pip setuptools
rm -rf "$ROOT/tmp/wheels"
in_root /opt/venv/bin/python -c 'import locust, gevent, zmq, psutil' >/dev/null

# --- user ----------------------------------------------------------------------
# 1000:1000 like the official locustio/locust image. HOME is group 0 and
# group-writable so an OpenShift-style random UID (which runs with GID 0) can
# write there too; any other UID can still run Locust (HOME is not needed).
in_root groupadd --gid 1000 locust
in_root useradd --no-log-init --uid 1000 --gid 1000 --home-dir /home/locust --shell /bin/sh locust
mkdir -p "$ROOT/home/locust"
chown 1000:0 "$ROOT/home/locust"
chmod 0775 "$ROOT/home/locust"

# --- trim ----------------------------------------------------------------------
rm -rf --one-file-system "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/lintian \
  "$ROOT"/usr/share/linda "$ROOT"/usr/share/locale/*
# keep the copyright files (licences of what the image ships)
find "$ROOT/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf --one-file-system "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/* "$ROOT"/var/cache/debconf/*-old \
  "$ROOT"/var/lib/dpkg/*-old "$ROOT"/var/log/* "$ROOT"/root/.cache "$ROOT"/tmp/* "$ROOT"/var/tmp/*
# a container gets its own machine id (or none)
: >"$ROOT/etc/machine-id"
