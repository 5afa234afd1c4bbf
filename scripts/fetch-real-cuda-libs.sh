#!/usr/bin/env bash
# The real CUDA libraries simclr loads (cuBLAS, NVRTC, cuDNN, NCCL, nvJPEG), at the versions
# PyTorch 2.11 requires, from their PyPI wheels, unpacked as a site-packages folder would hold
# them: <folder>/nvidia/cu13/lib, nvidia/cudnn/lib, nvidia/nccl/lib, and their headers beside
# (nvidia/*/include, with the CUDA runtime's and crt's headers they include). Prints <folder> on
# its last line. No GPU is needed to have them: on a machine without one, scripts/
# check-library-symbols.sh, tests/real_cuda_libraries.rs and tests/library_headers.rs check our
# use of them.
#
# Downloaded once (about 1.1 GB of wheels, 1.5 GB unpacked) into
# ${SIMCLR_REAL_CUDA_LIBS:-~/.cache/simclr-real-cuda-libs}; a later call only prints the folder.
set -euo pipefail

# What `pip install --dry-run --report - torch==2.11.0` resolved on 2026-12-02 (PyPI), and
# nvJPEG 13.0 (not a PyTorch requirement; the GPU bundle carries it, scripts/build-gpu-bundle.sh);
# the runtime's, crt's and cccl's headers (cuda.h, cuda_runtime.h, crt/host_config.h, nv/target),
# which the others include, at the versions of the pinned compiler
# (scripts/install-cuda-compiler.sh).
WHEELS=(nvidia-cublas==13.1.0.3 nvidia-cuda-nvrtc==13.0.88 nvidia-cudnn-cu13==9.19.0.56
  nvidia-nccl-cu13==2.28.9 nvidia-nvjpeg==13.0.4.44 nvidia-cuda-runtime==13.0.96
  nvidia-cuda-crt==13.0.88 nvidia-cuda-cccl==13.0.85)
ROOT="${SIMCLR_REAL_CUDA_LIBS:-$HOME/.cache/simclr-real-cuda-libs}"
SITE="$ROOT/site"
STAMP="$SITE/.wheels"

if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "${WHEELS[*]}" ]]; then
  rm -rf "$SITE" "$ROOT/wheels"
  mkdir -p "$ROOT/wheels"
  echo "fetch-real-cuda-libs: downloading ${WHEELS[*]}" >&2
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --dest "$ROOT/wheels" "${WHEELS[@]}" >&2
  # Only the shared libraries and the C headers; the wheels go once unpacked.
  python3 - "$ROOT/wheels" "$SITE" <<'PY'
import glob, os, sys, zipfile
wheels, site = sys.argv[1:]
for wheel in sorted(glob.glob(os.path.join(wheels, "*.whl"))):
    with zipfile.ZipFile(wheel) as z:
        for m in z.namelist():
            lib = "/lib/" in m and ".so" in os.path.basename(m)
            # Of cccl only nv/ (cuda_fp16.h includes <nv/target>), not its C++ libraries.
            header = "/include/" in m and (
                m.endswith((".h", ".hpp")) and "/cccl/" not in m or "/include/cccl/nv/" in m)
            if m.startswith("nvidia/") and (lib or header):
                z.extract(m, site)
PY
  rm -rf "$ROOT/wheels"
  echo "${WHEELS[*]}" >"$STAMP"
fi
echo "$SITE"
