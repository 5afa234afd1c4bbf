#!/usr/bin/env bash
# Every flag of every trainer command, and every numeric config key (through --set), given
# extreme values on a tiny run: a panic (exit 101) or an abort or signal (exit > 128) is a bug;
# a refusal (exit 1 or 2) is what we want. A run still going after 30 s is listed, not counted
# (a huge --epochs is legal). Prints each bug found and exits 1 if any.
# Too slow for CI (4,442 runs, 9 minutes on 2 cores at 550446a); the bugs it found are
# regression tests in tests/robust_cli.rs.
# Usage: bash scripts/cli-extremes.sh [path/to/simclr]   (default target/debug/simclr)
set -uo pipefail
BIN=${1:-target/debug/simclr}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
TINY=(--epochs 1 --synthetic-train 8 --synthetic-test 8 --batch-size 4 --image-size 16
  --model r18_0.25x_sk0)
VALUES=("" -1 -0 0 0.0 nan inf 1e-300 1e99 abc 65536 1000000 4294967296 99999999999
  18446744073709551616)
bugs=0 runs=0

# try LABEL ARGS...: one tiny run in a fresh output folder.
try() {
  local label=$1 rc
  shift
  rm -rf "$WORK/out"
  timeout 30 "$BIN" "$@" --out "$WORK/out" "${TINY[@]}" >"$WORK/o.txt" 2>"$WORK/e.txt"
  rc=$?
  runs=$((runs + 1))
  if ((rc == 101 || rc > 128)) || grep -q panicked "$WORK/e.txt"; then
    bugs=$((bugs + 1))
    echo "BUG exit $rc: $label: $(grep -m1 -A1 'panicked\|memory allocation' "$WORK/e.txt" | tr '\n' ' ' | cut -c1-200)"
  elif ((rc == 124)); then
    echo "slow (still running after 30 s, not counted): $label"
  fi
}

for cmd in pretrain finetune distill linear-eval supervised eval pipeline bench embed info; do
  for flag in $("$BIN" "$cmd" --help 2>&1 | grep -o '^ *--[a-z0-9.-]*' | tr -d ' ' | sort -u); do
    [[ $flag == --help || $flag == --out ]] && continue
    for v in "${VALUES[@]}"; do try "$cmd $flag=$v" "$cmd" "$flag=$v"; done
  done
done
# Numeric keys, as the resolved configuration a run prints lists them.
"$BIN" pretrain --out "$WORK/keys" "${TINY[@]}" >"$WORK/cfg.txt" 2>&1
keys=$(awk '/^\[/ {sec = substr($0, 2, length($0) - 2) "."; next}
  / = [-0-9.]/ {print sec $1}' "$WORK/cfg.txt")
for k in $keys; do
  for v in "${VALUES[@]:1}"; do try "--set $k=$v" pipeline --set "$k=$v"; done
done
echo "$runs runs, $bugs bugs"
((bugs == 0))
