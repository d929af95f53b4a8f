#!/usr/bin/env bash
# Runs every fuzz target of the operator for a bounded time; fails on the first
# crash (a panic, a failed property, a timeout or an out-of-memory input).
#
#   operator/fuzz/run.sh [SECONDS_PER_TARGET]      (default 20)
#
# - installs cargo-fuzz $CARGO_FUZZ_VERSION (pinned, --locked) into
#   ~/.cache/locust-k8s-operator/cargo-fuzz/<version> unless already there;
# - builds the targets with the nightly toolchain (rustup `+nightly`, or
#   $FUZZ_TOOLCHAIN) into ~/.cache/locust-k8s-operator/fuzz-target (or
#   $FUZZ_TARGET_DIR): outside the repository, so that a fresh clone (CI)
#   reuses the compiled dependencies;
# - seeds each target from the repository's own inputs, read where they are
#   (samples, admission corpus, Locust statistics fixtures), plus a few command
#   lines written at run time; libFuzzer grows operator/fuzz/corpus/<target>
#   (git-ignored, kept between runs) and writes crashes to
#   operator/fuzz/artifacts/<target>/;
# - prints, per target, the executions, executions per second, corpus size and
#   wall time.
#
# Environment: FUZZ_TARGETS (space-separated subset), FUZZ_TOOLCHAIN,
# FUZZ_TARGET_DIR, FUZZ_INPUT_TIMEOUT (seconds one input may take, default 10),
# CARGO_FUZZ_CACHE.
set -euo pipefail

SECONDS_PER_TARGET="${1:-20}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS_PER_TARGET]  (a positive integer, got '$SECONDS_PER_TARGET')" >&2
  exit 2
fi

CARGO_FUZZ_VERSION=0.13.2
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"
INPUT_TIMEOUT="${FUZZ_INPUT_TIMEOUT:-10}"
CACHE="${CARGO_FUZZ_CACHE:-$HOME/.cache/locust-k8s-operator/cargo-fuzz/$CARGO_FUZZ_VERSION}"
TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/locust-k8s-operator/fuzz-target}"
ALL_TARGETS="conversion validation command_split stats_parser admission_review conversion_review"
TARGETS="${FUZZ_TARGETS:-$ALL_TARGETS}"

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OPERATOR_DIR="$(dirname "$FUZZ_DIR")"

log() { printf '[fuzz] %s\n' "$*"; }

# --- cargo-fuzz, pinned and cached outside the repository -------------------
if [[ ! -x "$CACHE/bin/cargo-fuzz" ]] || ! "$CACHE/bin/cargo-fuzz" --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION into $CACHE"
  start=$SECONDS
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$CACHE" --quiet
  log "installed cargo-fuzz in $((SECONDS - start)) s"
else
  log "reusing $CACHE/bin/cargo-fuzz ($CARGO_FUZZ_VERSION)"
fi
export PATH="$CACHE/bin:$PATH"

if ! cargo "+$TOOLCHAIN" --version >/dev/null 2>&1; then
  log "installing the $TOOLCHAIN toolchain (minimal profile)"
  rustup toolchain install "$TOOLCHAIN" --profile minimal >/dev/null 2>&1 || true
fi
if ! cargo "+$TOOLCHAIN" --version >/dev/null 2>&1; then
  echo "the $TOOLCHAIN toolchain is required (libFuzzer's instrumentation is nightly-only): rustup toolchain install nightly" >&2
  exit 1
fi

# --- build -----------------------------------------------------------------
cd "$OPERATOR_DIR"
for target in $TARGETS; do
  [[ " $ALL_TARGETS " == *" $target "* ]] || { echo "unknown fuzz target '$target' (known: $ALL_TARGETS)" >&2; exit 2; }
done
log "building the fuzz targets ($TOOLCHAIN, release with debug assertions, AddressSanitizer)"
start=$SECONDS
cargo "+$TOOLCHAIN" fuzz build --fuzz-dir "$FUZZ_DIR" --target-dir "$TARGET_DIR" --release --debug-assertions
log "built in $((SECONDS - start)) s"
BIN_DIR="$TARGET_DIR/x86_64-unknown-linux-gnu/release"

# --- seeds -----------------------------------------------------------------
# Command lines: every command of the samples and corpus, and a few tricky ones.
commands_dir="$TARGET_DIR/seeds/command_split"
rm -rf "$commands_dir"
mkdir -p "$commands_dir"
n=0
while IFS= read -r line; do
  n=$((n + 1))
  printf '%s' "$line" >"$commands_dir/corpus-$n"
done < <(grep -rhoE '(command|CommandSeed): .*' "$OPERATOR_DIR/samples" "$OPERATOR_DIR/tests/corpus" \
  | sed -E 's/^[A-Za-z]+: //; s/^"(.*)"$/\1/; s/^'"'"'(.*)'"'"'$/\1/' | sort -u)
tricky=(
  'locust -f /lotest/src/locustfile.py'
  '--locustfile /lotest/src/locustfile.py --tags "checkout flow" --host '"'"'http://shop:8080'"'"''
  'locust -f x.py \'
  'locust -f x.py \\'
  $'locust \\\n  -f x.py'
  '# comment only'
  'a"b'"'"'c'
)
for t in "${tricky[@]}"; do
  n=$((n + 1))
  printf '%s' "$t" >"$commands_dir/tricky-$n"
done

seeds_for() {
  case "$1" in
    stats_parser) echo "$OPERATOR_DIR/tests/fixtures" ;;
    command_split) echo "$commands_dir" ;;
    *) echo "$OPERATOR_DIR/samples $OPERATOR_DIR/tests/corpus/valid $OPERATOR_DIR/tests/corpus/invalid" ;;
  esac
}

# --- run -------------------------------------------------------------------
summary=()
failed=()
for target in $TARGETS; do
  corpus="$FUZZ_DIR/corpus/$target"
  mkdir -p "$corpus" "$FUZZ_DIR/artifacts/$target"
  logfile="$TARGET_DIR/fuzz-$target.log"
  log "running $target for ${SECONDS_PER_TARGET} s (log: $logfile)"
  started=$SECONDS
  # The binary built above, run directly: `cargo fuzz run` would rebuild first
  # whenever a source changed since, and fuzz something else than was built.
  # shellcheck disable=SC2046 # the seed directories are space-free paths of this repository
  if "$BIN_DIR/$target" -artifact_prefix="$FUZZ_DIR/artifacts/$target/" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout="$INPUT_TIMEOUT" -rss_limit_mb=2048 \
    -print_final_stats=1 "$corpus" $(seeds_for "$target") >"$logfile" 2>&1; then
    status=ok
  else
    status=CRASH
    failed+=("$target")
    tail -n 60 "$logfile" >&2
  fi
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$logfile" | grep -oE '[0-9]+$' | tail -1)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$logfile" | grep -oE '[0-9]+$' | tail -1)
  files=$(find "$corpus" -type f | wc -l)
  summary+=("$(printf '%-18s %-6s %10s execs %7s execs/s %6s corpus files %5s s wall' "$target" "$status" "${execs:-?}" "${rate:-?}" "$files" "$((SECONDS - started))")")
done

log "summary (${SECONDS_PER_TARGET} s per target):"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  log "crashes in: ${failed[*]} (inputs in $FUZZ_DIR/artifacts/<target>/; replay with: $BIN_DIR/<target> <file>)"
  exit 1
fi
log "no crash"
