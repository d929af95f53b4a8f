#!/usr/bin/env bash
# Installs the Locust version pinned in locust-requirements.txt into a venv under
# ~/.cache/locust-k8s-operator/locust-<version>/ (idempotent: a complete venv of that
# version is reused; concurrent runs are serialized with flock).
# Prints the venv's bin directory on the last line of stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
req="$here/locust-requirements.txt"
version="$(sed -n 's/^locust==\([^[:space:]]*\).*/\1/p' "$req" | head -n 1)"
[ -n "$version" ] || { echo "no locust==<version> line in $req" >&2; exit 2; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}/locust-k8s-operator"
dir="$cache/locust-$version"
if [ -f "$dir/.complete" ] && "$dir/bin/locust" --version 2>/dev/null | grep -q "$version"; then
  echo "$dir/bin"
  exit 0
fi
python="${PYTHON:-python3}"
command -v "$python" > /dev/null || { echo "$python not found" >&2; exit 3; }
mkdir -p "$cache"
# Serialize concurrent installs (tests run in parallel).
exec 9> "$cache/.locust-$version.lock"
flock 9
if [ ! -f "$dir/.complete" ]; then
  rm -rf "$dir"
  "$python" -m venv "$dir" >&2
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  "$dir/bin/locust" --version >&2
  touch "$dir/.complete"
fi
echo "$dir/bin"
