#!/usr/bin/env bash
# Runs the bundled GPU tests (bin/*), one executable at a time; copied into the bundle as run.sh
# by scripts/build-gpu-bundle.sh. Arguments: [memcheck] [name filter] [-- test args].
set -uo pipefail
cd "$(dirname "$0")"
mode="${1:-}"; filter="${2:-}"
shift $(( $# > 2 ? 2 : $# ))
[[ "${1:-}" == "--" ]] && shift
# Every nvidia/*/lib of PyTorch's Python (libpaths.sh); a GPU test that cannot open the
# device fails instead of printing `skipped:`.
source ./libpaths.sh
export SIMCLR_REQUIRE_GPU=1
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
wrap=()
if [[ "$mode" == "memcheck" ]]; then
  san="$(command -v compute-sanitizer || true)"
  [[ -z "$san" && -n "${CUDA_HOME:-}" && -x "$CUDA_HOME/bin/compute-sanitizer" ]] && san="$CUDA_HOME/bin/compute-sanitizer"
  [[ -z "$san" ]] && san="$(ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -n1)"
  if [[ -z "$san" ]]; then echo "compute-sanitizer not found (PATH, \$CUDA_HOME/bin, /usr/local/cuda*/bin)"; exit 2; fi
  wrap=("$san" --tool memcheck --error-exitcode 99)
fi
status=0
for exe in bin/*; do
  [[ -n "$filter" && "$(basename "$exe")" != *"$filter"* ]] && continue
  echo "=== $(basename "$exe")"
  "${wrap[@]}" "$exe" --test-threads=1 --nocapture "$@" || status=1
done
exit $status
