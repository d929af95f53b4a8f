#!/usr/bin/env bash
# Regenerates the replace block of kube/go.mod from k8s.io/kubernetes' own
# go.mod: every staging module it replaces with ./staging/src/k8s.io/<name> is
# mapped to the published k8s.io/<name> v0.<minor>.<patch> tag matching the
# k8s.io/kubernetes version pinned in the require block.
#
#   1. edit the k8s.io/kubernetes version in go.mod
#   2. ./update-replace.sh && go mod tidy
#
# An optional argument names another wrapper module's directory (../kube-min).
set -euo pipefail
cd "${1:-$(dirname "${BASH_SOURCE[0]}")}"
export GOTOOLCHAIN=local

k8s=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2; exit }
           $1 == "require" && $2 == "k8s.io/kubernetes" { print $3; exit }' go.mod)
[[ $k8s =~ ^v1\.([0-9]+\.[0-9]+)$ ]] || { echo "cannot find k8s.io/kubernetes v1.x.y in go.mod" >&2; exit 1; }
staging="v0.${BASH_REMATCH[1]}"

gomod=$(go mod download -json "k8s.io/kubernetes@$k8s" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
mods=$(awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$gomod" | sort)
[[ -n $mods ]] || { echo "no staging replaces found in $gomod" >&2; exit 1; }

# Drop every existing replace (the staging list changes between releases),
# then add one per staging module.
for old in $(go mod edit -json | grep -A1 '"Old": {' | sed -n 's/^[[:space:]]*"Path": "\(.*\)",\{0,1\}$/\1/p'); do
  go mod edit -dropreplace="$old"
done
{
  echo "replace ("
  for m in $mods; do printf '\t%s => %s %s\n' "$m" "$m" "$staging"; done
  echo ")"
} >>go.mod
go mod edit -fmt
echo "mapped $(wc -w <<<"$mods") staging modules of k8s.io/kubernetes@$k8s to $staging" >&2
