#!/usr/bin/env bash
# Prepares the OperatorHub.io submission of one release: the directory layout
# that a pull request to github.com/k8s-operatorhub/community-operators adds.
#
#   hack/community-operators-pr.sh VERSION OUT_DIR
#
# VERSION is the release version (e.g. 3.0.0; a leading "v" is dropped); it
# must equal spec.version of the committed bundle's ClusterServiceVersion, so
# run it on the release commit. OUT_DIR is an empty directory or a clone of
# your fork of community-operators. The script writes
#
#   OUT_DIR/operators/locust-k8s-operator/VERSION/{manifests,metadata,tests}
#       byte-identical copies of bundle/{manifests,metadata,tests}
#   OUT_DIR/operators/locust-k8s-operator/ci.yaml
#       updateGraph: replaces-mode (only when it does not exist yet: changing
#       an existing ci.yaml needs a pull request of its own)
#
# and prints the git commands that open the pull request (docs/release.md).
set -euo pipefail

PACKAGE=locust-k8s-operator
CSV_FILE=manifests/$PACKAGE.clusterserviceversion.yaml

usage() {
  sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
  echo "community-operators-pr.sh: $*" >&2
  exit 1
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
esac
if [[ $# -ne 2 ]]; then
  usage >&2
  exit 2
fi

version=${1#v}
out=$2
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  die "not a semantic version: '$1'"
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle=$root/bundle
csv=$bundle/$CSV_FILE
[[ -f $csv ]] || die "$csv not found (run make generate)"

# spec.version of the CSV: the two-space-indented `version:` key of the
# top-level `spec:` mapping, quotes removed.
csv_version=$(awk '
  /^spec:/ { in_spec = 1; next }
  /^[^ #]/ { in_spec = 0 }
  in_spec && /^  version:/ {
    v = $0
    sub(/^  version:[ ]*/, "", v)
    gsub(/["'\'' ]/, "", v)
    print v
    exit
  }
' "$csv")
[[ -n $csv_version ]] || die "no spec.version in $csv"
if [[ $csv_version != "$version" ]]; then
  die "bundle/$CSV_FILE has spec.version $csv_version, not $version (check out the release commit, or run make generate)"
fi

package_dir=$out/operators/$PACKAGE
target=$package_dir/$version
if [[ -e $target ]]; then
  die "$target already exists (a published bundle is immutable)"
fi

mkdir -p "$target"
for part in manifests metadata tests; do
  if [[ -d $bundle/$part ]]; then
    cp -R "$bundle/$part" "$target/$part"
  elif [[ $part != tests ]]; then
    die "$bundle/$part not found"
  fi
done

if [[ -e $package_dir/ci.yaml ]]; then
  echo "keeping the existing $package_dir/ci.yaml (change it in a separate pull request)" >&2
else
  cat >"$package_dir/ci.yaml" <<'YAML'
---
# Build the upgrade graph from each CSV's spec.replaces, spec.skips and
# olm.skipRange, and the channels from each bundle's metadata/annotations.yaml.
updateGraph: replaces-mode
reviewers:
  - AbdelrhmanHamouda
YAML
fi

echo "prepared $target:" >&2
(cd "$out" && find "operators/$PACKAGE" -type f | LC_ALL=C sort) >&2

branch="$PACKAGE-$version"
title="operator $PACKAGE ($version)"
# $version matched the semantic-version pattern above: no quoting needed
# except for OUT_DIR.
echo "# Open the pull request (OUT_DIR must be a clone of your fork of"
echo "# github.com/k8s-operatorhub/community-operators; commits need a DCO sign-off):"
printf 'cd %q\n' "$out"
cat <<EOF
git checkout -b $branch
git add operators/$PACKAGE
git commit -s -m '$title'
git push origin $branch
gh pr create --repo k8s-operatorhub/community-operators --title '$title' --body 'Release $version of $PACKAGE, copied from its bundle/.'
EOF
