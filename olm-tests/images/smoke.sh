#!/usr/bin/env bash
# Runs what is inside the built images, without a container runtime, the way
# a kubelet would with a read-only root file system, and (when a containerd
# build is around) imports every archive into a throwaway containerd:
#
#   olm-tests/images/smoke.sh [IMAGE_SET_DIR]   # default: build.sh --print-dir
#
# Each image's layers are unpacked into a temp dir, which is then bind-mounted
# read-only and entered with chroot(1) as the image's user, in new mount, PID
# and network namespaces (loopback only: nothing can leave, nothing listens
# outside). Checks:
#   pause     runs as PID 1, reaps a zombie re-parented to it, exits 0 on SIGTERM
#   target    /, /fail?every=2, /healthz, /stats, /stats/reset; exits 0 on SIGTERM
#   locust    --version; a headless run against target (user 1000:1000);
#             master + worker with a random UID (1000680000:0) and HOME unset,
#             then HOME=/ (unwritable); the target's /stats shows the load
#   operator  --version as 65532:65532 in an otherwise empty root
#   ctr       `ctr -n k8s.io images import` + `images ls`/`check` (only if
#             containerd and ctr are found: LOCUST_CONTAINERD_BIN, else the
#             tools cache's bin/), on a private root/state/socket
# Needs root, util-linux (unshare), iproute2 (ip), curl, python3.
set -euo pipefail

IMAGES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SET=${1:-$(bash "$IMAGES_DIR/build.sh" --print-dir)}
[[ -f $SET/.complete ]] || { echo "smoke.sh: $SET is not a complete image set" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "smoke.sh: needs root (chroot, unshare)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/locust-images-smoke.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    # unshare --fork ignores SIGTERM while it waits: end the whole tree, by pid
    kill -KILL $(descendants "$p") "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
FAILED=0 PASSED=0
ok() { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$*"; }
check() { # DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}

# unpack NAME: the image's root file system in $WORK/NAME, its config in $WORK/NAME.json
unpack() {
  local name=$1 oci="$WORK/$1.oci"
  mkdir -p "$oci" "$WORK/$name"
  tar -xf "$SET/$name.tar" -C "$oci"
  python3 - "$oci" "$WORK/$name" "$WORK/$name.json" <<'EOF'
import json, subprocess, sys
oci, root, out = sys.argv[1:]
blob = lambda d: f"{oci}/blobs/sha256/{d.split(':')[1]}"
index = json.load(open(f"{oci}/index.json"))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))
for layer in manifest["layers"]:
    subprocess.run(["tar", "--numeric-owner", "-xzf", blob(layer["digest"]), "-C", root], check=True)
json.dump(config["config"], open(out, "w"))
EOF
  rm -rf "$oci"
}
cfg() { python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$WORK/$1.json" "$2"; }

# in_ns ROOTFS USERSPEC COMMAND...: run COMMAND (a path in ROOTFS) with an
# empty environment, chrooted into a read-only bind of ROOTFS with /proc,
# /dev (and $MNT on /mnt), as USERSPEC, in new mount and PID namespaces,
# sharing the current network namespace (only loopback addresses are used).
in_ns() {
  local root=$1 user=$2; shift 2
  unshare --mount --pid --fork --kill-child bash -c '
    set -e
    root=$1 user=$2; shift 2
    mount --make-rprivate /
    mount --bind "$root" "$root"
    mount -o remount,bind,ro "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    [[ -z ${MNT:-} ]] || mount --bind "$MNT" "$root/mnt"
    exec env -i "$(command -v chroot)" --userspec="$user" "$root" "$@"
  ' _ "$root" "$user" "$@"
}

# descendants PID: every descendant of PID (depth first).
descendants() {
  local c
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    echo "$c"
    descendants "$c"
  done
}
# find_exe PID PATH_SUFFIX: the descendant of PID running a binary whose path
# ends in PATH_SUFFIX (waits up to 5s for it to appear).
find_exe() {
  local p
  for _ in $(seq 50); do
    for p in $(descendants "$1"); do
      [[ $(readlink "/proc/$p/exe" 2>/dev/null) == *"$2" ]] && { echo "$p"; return; }
    done
    sleep 0.1
  done
  echo "smoke.sh: no $2 under $1" >&2
  return 1
}

# --- pause ------------------------------------------------------------------------------
unpack pause
check "pause: config user 65535, entrypoint /pause" \
  test "$(cfg pause 'c["User"], c["Entrypoint"]')" == "('65535:65535', ['/pause'])"
mkdir -p "$WORK/pause/proc" "$WORK/pause/dev"
# pause is the first process of a new PID namespace, as in a pod sandbox.
unshare --pid --fork --kill-child chroot --userspec=65535:65535 "$WORK/pause" /pause &
UNSHARE=$!
PIDS+=("$UNSHARE")
PAUSE=$(find_exe "$UNSHARE" /pause)
check "pause: runs as PID 1 of its namespace" \
  grep -q '^NSpid:.*[[:space:]]1$' "/proc/$PAUSE/status"
# A child of a process in the namespace outlives its parent: it is re-parented
# to pause, which must reap it when it exits.
nsenter --target "$PAUSE" --pid -- bash -c 'sleep 0.3 & exit 0'
sleep 1
zombies=$(ps -o stat= --ppid "$PAUSE" 2>/dev/null | grep -c Z || true)
check "pause: reaped the orphaned child (zombies left: $zombies)" test "$zombies" == 0
kill -TERM "$PAUSE"
rc=0; wait "$UNSHARE" || rc=$?
check "pause: exits 0 on SIGTERM (got $rc)" test "$rc" == 0

# --- target -----------------------------------------------------------------------------
unpack target
check "target: config user 65532, entrypoint /target" \
  test "$(cfg target 'c["User"], c["Entrypoint"]')" == "('65532:65532', ['/target'])"
mkdir -p "$WORK/target/proc" "$WORK/target/dev"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
in_ns "$WORK/target" 65532:65532 /target -listen "127.0.0.1:$PORT" -fail-every 0 >"$WORK/target.log" 2>&1 &
TARGET_NS=$!
PIDS+=("$TARGET_NS")
URL="http://127.0.0.1:$PORT"
for _ in $(seq 50); do curl -sf "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
check "target: GET / is 200 ok" test "$(curl -s -w ' %{http_code}' "$URL/")" == "ok 200"
codes=$(for _ in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code} ' "$URL/fail?every=2"; done)
check "target: /fail?every=2 fails every second request ($codes)" test "$codes" == "200 500 200 500 "
check "target: /healthz" test "$(curl -s "$URL/healthz")" == ok
stats=$(curl -s "$URL/stats")
check "target: /stats counts 5 requests, 2 errors ($stats)" \
  python3 -c 'import json,sys; s=json.loads(sys.argv[1]); assert (s["requests"], s["errors"], s["paths"]["/fail"]["requests"]) == (5, 2, 4)' "$stats"
check "target: POST /stats/reset" test "$(curl -s -X POST -o /dev/null -w '%{http_code}' "$URL/stats/reset")" == 204

# --- locust -----------------------------------------------------------------------------
unpack locust
check "locust: config user 1000:1000, entrypoint locust, workdir, ports" \
  test "$(cfg locust 'c["User"], c["Entrypoint"], c["WorkingDir"], sorted(c["ExposedPorts"])')" \
  == "('1000:1000', ['locust'], '/home/locust', ['5557/tcp', '8089/tcp'])"
LOCUST_ENV=()
while IFS= read -r e; do LOCUST_ENV+=("$e"); done < <(cfg locust '"\n".join(c["Env"])')
mkdir -p "$WORK/lotest"
cat >"$WORK/lotest/locustfile.py" <<'EOF'
from locust import HttpUser, constant, task

class Visitor(HttpUser):
    wait_time = constant(0.05)

    @task
    def index(self):
        self.client.get("/")
EOF
# locust_run USERSPEC ENV... -- ARGS...: Locust from the image, cwd = WorkingDir
locust_run() {
  local user=$1; shift
  local -a env=()
  while [[ $1 != -- ]]; do env+=("$1"); shift; done
  shift
  MNT="$WORK/lotest" in_ns "$WORK/locust" "$user" /usr/bin/env -C /home/locust "${env[@]}" \
    locust -f /mnt/locustfile.py "$@"
}
no_home_env() { local e; for e in "${LOCUST_ENV[@]}"; do [[ $e == HOME=* ]] || printf '%s\n' "$e"; done; }
mapfile -t ENV_NO_HOME < <(no_home_env)
requests() { curl -s "$URL/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }

out=$(in_ns "$WORK/locust" 1000:1000 /usr/bin/env "${LOCUST_ENV[@]}" locust --version 2>&1) || true
check "locust: --version ($out)" grep -q "locust 2" <<<"$out"

curl -s -X POST "$URL/stats/reset" >/dev/null
rc=0
locust_run 1000:1000 "${LOCUST_ENV[@]}" -- --headless -u 4 -r 4 -t 4s --host "$URL" \
  >"$WORK/locust1.log" 2>&1 || rc=$?
n=$(requests)
check "locust: headless run as 1000:1000 on a read-only root (exit $rc, $n requests)" \
  test "$rc" == 0 -a "$n" -gt 10
[[ $rc == 0 ]] || tail -20 "$WORK/locust1.log"

# OpenShift style: random UID, GID 0, no HOME; master and worker over ZeroMQ.
MPORT=$(free_port)
for home in unset /; do
  curl -s -X POST "$URL/stats/reset" >/dev/null
  env_=("${ENV_NO_HOME[@]}")
  [[ $home == unset ]] || env_+=("HOME=$home")
  locust_run 1000680000:0 "${env_[@]}" -- --master --master-bind-host 127.0.0.1 --master-bind-port "$MPORT" \
    --expect-workers 1 --headless -u 4 -r 4 -t 4s --host "$URL" >"$WORK/master.log" 2>&1 &
  MASTER=$!
  PIDS+=("$MASTER")
  locust_run 1000680000:0 "${env_[@]}" -- --worker --master-host 127.0.0.1 --master-port "$MPORT" \
    >"$WORK/worker.log" 2>&1 &
  WORKER=$!
  PIDS+=("$WORKER")
  rc=0; wait "$MASTER" || rc=$?
  wrc=0; wait "$WORKER" || wrc=$?
  n=$(requests)
  check "locust: master+worker as 1000680000:0, HOME $home (exit $rc/$wrc, $n requests)" \
    test "$rc" == 0 -a "$wrc" == 0 -a "$n" -gt 10
  [[ $rc == 0 && $wrc == 0 ]] || { tail -15 "$WORK/master.log"; tail -15 "$WORK/worker.log"; }
done
if grep -qi "permission denied\|read-only file system" "$WORK"/*.log; then
  fail "locust: a log mentions a write failure: $(grep -hi 'permission denied\|read-only' "$WORK"/*.log | head -3)"
else
  ok "locust: no write failures logged"
fi

notes=$(grep -hi "warn\|error\|traceback" "$WORK"/locust*.log "$WORK"/master.log "$WORK"/worker.log | sort | uniq -c | head -10 || true)
[[ -z $notes ]] || printf 'note: locust logged:\n%s\n' "$notes"

kill -TERM "$(find_exe "$TARGET_NS" /target)"
rc=0; wait "$TARGET_NS" || rc=$?
check "target: exits 0 on SIGTERM (got $rc)" test "$rc" == 0

# --- operator ---------------------------------------------------------------------------
unpack operator
check "operator: config user 65532:65532, entrypoint /locust-k8s-operator" \
  test "$(cfg operator 'c["User"], c["Entrypoint"]')" == "('65532:65532', ['/locust-k8s-operator'])"
check "operator: the image holds only the binary" \
  test "$(cd "$WORK/operator" && find . -mindepth 1 | sort | tr '\n' ' ')" == "./locust-k8s-operator "
mkdir -p "$WORK/operator/proc" "$WORK/operator/dev"
out=$(in_ns "$WORK/operator" 65532:65532 /locust-k8s-operator --version 2>&1) || true
check "operator: --version in an empty root ($out)" grep -q "^locust-k8s-operator " <<<"$out"

# --- containerd import ------------------------------------------------------------------
BIN=${LOCUST_CONTAINERD_BIN:-}
if [[ -z $BIN ]]; then
  if tools=$(bash "$IMAGES_DIR/../tools/build.sh" --print-dir 2>/dev/null); then
    BIN="$tools/bin"
  else
    # the tools of this tree are not built: take the newest complete build
    # that has containerd (the images do not depend on its exact version)
    BIN=$(ls -1dt "${LOCUST_TOOLS_CACHE:-$HOME/.cache/locust-k8s-operator/tools}"/*/.complete 2>/dev/null |
      while read -r c; do d=$(dirname "$c"); [[ -x $d/bin/containerd ]] && { echo "$d/bin"; break; }; done) || true
  fi
fi
[[ -z $BIN ]] || echo "containerd: $BIN"
if [[ -n $BIN && -x $BIN/containerd && -x $BIN/ctr ]]; then
  C="$WORK/containerd"
  mkdir -p "$C/root" "$C/state" "$C/tmp"
  cat >"$C/config.toml" <<EOF
version = 3
root = "$C/root"
state = "$C/state"
temp = "$C/tmp"
imports = []
# no CRI (nothing is run here), no NRI socket under /var/run, nothing in /opt
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime",
  "io.containerd.nri.v1.nri", "io.containerd.image-verifier.v1.bindir"]
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[debug]
  address = "$C/debug.sock"
[metrics]
  address = ""
EOF
  "$BIN/containerd" --config "$C/config.toml" >"$C/containerd.log" 2>&1 &
  CONTAINERD=$!
  PIDS+=("$CONTAINERD")
  for _ in $(seq 100); do [[ -S $C/containerd.sock ]] && break; sleep 0.1; done
  ctr=("$BIN/ctr" --address "$C/containerd.sock" -n k8s.io)
  for name in pause target locust operator; do
    ref=$(awk -F'\t' -v n="$name" '$1 == n { print $2 }' "$SET/images.tsv")
    digest=$(awk -F'\t' -v n="$name" '$1 == n { print $3 }' "$SET/images.tsv")
    start=$(date +%s.%N)
    if out=$("${ctr[@]}" images import "$SET/$name.tar" 2>&1); then
      secs=$(python3 -c "import time; print(round(time.time() - $start, 1))")
      listed=$("${ctr[@]}" images ls 2>/dev/null | awk -v r="$ref" '$1 == r { print $3 }')
      check "ctr: imported $ref in ${secs}s (listed digest ${listed:-none})" test "$listed" == "$digest"
      check "ctr: $ref is complete and unpacked" \
        env REF="$ref" bash -c '"$@" images check 2>/dev/null | grep -F "$REF " | grep -q "complete.* true *$"' _ "${ctr[@]}"
    else
      fail "ctr: import of $name: $out"
    fi
  done
  "${ctr[@]}" images ls
  "${ctr[@]}" snapshots --snapshotter overlayfs ls | wc -l | sed 's/^/snapshots: /'
  kill -TERM "$CONTAINERD"
  wait "$CONTAINERD" || true
  # containerd leaves overlay mounts only for running containers; there are none.
  if findmnt -rn -o TARGET | grep -q -F "$C"; then fail "ctr: mounts left under $C"; fi
else
  echo "skip ctr import: no containerd/ctr (set LOCUST_CONTAINERD_BIN or build the tools)"
fi

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
