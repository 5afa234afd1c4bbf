#!/usr/bin/env bash
# The bench part of the GPU bundle (called by scripts/build-gpu-bundle.sh with the bundle folder):
# the criterion benches built with --features cuda (release profile, as the bench profile
# inherits it; stripped; SIMCLR_BUNDLE_PROFILE=test builds them in the test profile instead,
# which CI does to reuse its --features cuda build: about 20 s instead of 4.5 minutes, and the
# bundle's scripts then refuse to report timings) in bench/, the trainer built in the same cargo call (one build of the
# library: a call of its own resolves other dependency features and builds it again) in
# bin-tools/, the table script and the PyTorch baselines, and run-bench.sh, which needs no Rust
# on the GPU machine, only a python3 with torch:
#   bash gpu-bundle/run-bench.sh                       # our CUDA benches, PyTorch eager+compile, table
#   bash gpu-bundle/run-bench.sh --torch skip          # ours only (about 5 minutes)
#   bash gpu-bundle/run-bench.sh --ours skip --modes eager   # PyTorch only, reusing ours.json in --out
#   bash gpu-bundle/run-bench.sh --filter ntxent-cuda --quick
# Output (table.md, ours.json, pytorch.json, ours.log, pytorch.log) goes to $OUT when set (the
# device tool's folder), else gpu-bundle/results; further arguments go to bench/table.py.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:?usage: $0 <bundle folder>}"

# Checked by scripts/build-gpu-bundle.sh, which calls this script.
PROFILE="${SIMCLR_BUNDLE_PROFILE:-release}"

json="$(mktemp)"
trap 'rm -f "$json"' EXIT
cargo build --profile "$PROFILE" --features cuda --benches --bin simclr --message-format=json >"$json"
mkdir -p "$DEST/bench" "$DEST/pytorch" "$DEST/bin-tools"
while IFS=$'\t' read -r kind name test exe; do
  if [[ $kind == bench ]]; then
    cp -p "$exe" "$DEST/bench/$name"
    echo "bundled bench $name" >&2
  elif [[ $kind == bin && $name == simclr ]] && ((!test)); then
    cp -p "$exe" "$DEST/bin-tools/simclr"
    echo "bundled the trainer bin-tools/simclr" >&2
  fi
done < <(python3 scripts/cargo-executables.py "$json")
[[ -x "$DEST/bin-tools/simclr" ]] || { echo "bench-bundle: cargo built no simclr executable" >&2; exit 1; }
strip "$DEST"/bench/* "$DEST/bin-tools/simclr"
# Read by run-bench.sh, validate.sh and first-contact.sh: only a release build gives figures.
echo "$PROFILE" >"$DEST/build-profile.txt"
cp bench/table.py "$DEST/table.py"
cp bench/pytorch/*.py bench/pytorch/*.jsonl "$DEST/pytorch/"

cat >"$DEST/run-bench.sh" <<'RUN'
#!/usr/bin/env bash
# Our CUDA benches and the PyTorch baselines on this GPU, then the table (see table.py --help).
set -uo pipefail
cd "$(dirname "$0")"
# Every nvidia/*/lib of PyTorch's Python (libpaths.sh, copied by build-gpu-bundle.sh); a bench
# without its GPU group exits non-zero.
source ./libpaths.sh
export SIMCLR_REQUIRE_GPU=1
export PYTHONUNBUFFERED=1
profile="$(cat build-profile.txt 2>/dev/null || echo unknown)"
if [[ $profile != release ]]; then
  echo "run-bench.sh: this bundle's benches were built in the '$profile' profile (a CI build), not release: no figures from it; build the bundle with scripts/build-gpu-bundle.sh" >&2
  exit 2
fi
out="${OUT:-$PWD/results}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv >"$out/gpu.txt" 2>&1 || true
python3 table.py --ours "$PWD/bench" --device cuda --python python3 --out "$out" \
  --criterion-dir /tmp/simclr-criterion "$@"
RUN
chmod +x "$DEST/run-bench.sh"
