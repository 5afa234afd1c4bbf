#!/usr/bin/env bash
# Installs nvcc from PyPI into a cache directory, for machines without a CUDA toolkit.
# Prints the absolute path of nvcc as the LAST line of stdout:
#   export NVCC=$(bash scripts/install-cuda-compiler.sh | tail -n1)
# Versions are pinned together: an unpinned nvidia-nvvm pulls a newer cicc whose PTX the
# GPU machine's driver (580, CUDA 13.0) cannot load. nvidia-nvtx brings the header-only NVTX v3
# (include/nvtx3), which build.rs compiles into the profiler's range shim.
set -euo pipefail

PREFIX="${SIMCLR_NVCC_HOME:-$HOME/.cache/simclr-nvcc}"
PKGS=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
  nvidia-nvtx==13.0.85
)
STAMP="$PREFIX/.installed"
WANT="${PKGS[*]}"
PY="${PYTHON:-python3}"

log() { echo "install-cuda-compiler: $*" >&2; }

# The wheels unpack under nvidia/cu13 (nvcc, crt, nvvm, runtime headers) and nvidia/cuda_cccl
# or similar; find the directory holding bin/nvcc rather than hard-coding it.
find_root() { dirname "$(dirname "$(find "$PREFIX/pkgs" -path '*/bin/nvcc' -type f | head -n1)")"; }

if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
  log "installing ${WANT} into $PREFIX"
  rm -rf "$PREFIX/pkgs"
  mkdir -p "$PREFIX"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$PREFIX/pkgs" "${PKGS[@]}" >&2
  ROOT="$(find_root)"
  [[ -x "$ROOT/bin/nvcc" ]] || { log "nvcc not found in the wheels under $PREFIX/pkgs"; exit 1; }
  # nvcc looks for its headers in <root>/include and for cicc in <root>/nvvm/bin; the wheels
  # put some of these in sibling packages, so link every include dir into one place.
  mkdir -p "$ROOT/include"
  while IFS= read -r inc; do
    [[ "$inc" == "$ROOT/include" ]] && continue
    for f in "$inc"/*; do
      [[ -e "$ROOT/include/$(basename "$f")" ]] || ln -s "$f" "$ROOT/include/$(basename "$f")"
    done
  done < <(find "$PREFIX/pkgs/nvidia" -maxdepth 3 -type d -name include)
  if [[ ! -e "$ROOT/nvvm" ]]; then
    nvvm="$(dirname "$(dirname "$(find "$PREFIX/pkgs" -path '*/nvvm/bin/cicc' | head -n1)")")"
    ln -s "$nvvm" "$ROOT/nvvm"
  fi
  # nvcc links with lib64 by default; the runtime wheel ships lib.
  if [[ ! -e "$ROOT/lib64" && -d "$ROOT/lib" ]]; then ln -s lib "$ROOT/lib64"; fi
  rm -f "$PREFIX/.checked"
  echo "$WANT" > "$STAMP"
fi

ROOT="$(find_root)"
NVCC="$ROOT/bin/nvcc"

# Proof that nvcc finds cicc, ptxas and the bf16 headers (a tiny bf16 kernel), and that the
# NVTX headers sit next to it, where build.rs looks for them.
if [[ ! -f "$PREFIX/.checked" ]]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  cat > "$tmp/t.cu" <<'CU'
#include <cuda_bf16.h>
extern "C" __global__ void twice(__nv_bfloat16* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = __float2bfloat16(2.0f * __bfloat162float(x[i]));
}
CU
  "$NVCC" -fatbin -gencode arch=compute_80,code=compute_80 -gencode arch=compute_90,code=sm_90 \
    -o "$tmp/t.fatbin" "$tmp/t.cu" >&2 || { log "the check compile failed"; exit 1; }
  [[ -f "$ROOT/include/nvtx3/nvToolsExt.h" ]] || { log "no nvtx3 headers in $ROOT/include"; exit 1; }
  touch "$PREFIX/.checked"
  log "nvcc works: $("$NVCC" --version | tail -n1)"
fi

echo "$NVCC"
