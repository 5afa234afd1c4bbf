# Sourced by the GPU bundle's scripts (copied there as libpaths.sh): puts every CUDA library
# folder of the Python that holds PyTorch on LD_LIBRARY_PATH, for child processes (glibc reads
# it at process start; simclr itself also preloads them, src/cuda/driver/libraries.rs).
# Order: $SIMCLR_CUDA_LIBS (with the bundle's lib/ added at its end), then every site-packages/nvidia/*/lib (CUDA 13 wheels put cuBLAS,
# the runtime and NVRTC in nvidia/cu13/lib; cuDNN and NCCL have their own), then torch/lib, then
# $CUDA_HOME/lib64. Python: $SIMCLR_PYTHON, default python3.
_simclr_dirs="$("${SIMCLR_PYTHON:-python3}" - 2>/dev/null <<'PY'
import glob, os, sys
seen = []
for p in sys.path:
    for d in sorted(glob.glob(os.path.join(p or ".", "nvidia", "*", "lib"))) + [os.path.join(p or ".", "torch", "lib")]:
        d = os.path.abspath(d)
        if os.path.isdir(d) and d not in seen:
            seen.append(d)
print(":".join(seen))
PY
)"
# The bundle's own lib/ (libnvjpeg.so.13, for machines whose PyTorch lacks the nvidia-nvjpeg
# wheel) goes on $SIMCLR_CUDA_LIBS after what the caller named there.
_simclr_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -f "$_simclr_here/lib/libnvjpeg.so.13" ]]; then
  case ":${SIMCLR_CUDA_LIBS:-}:" in
    *":$_simclr_here/lib:"*) ;;
    *) SIMCLR_CUDA_LIBS="${SIMCLR_CUDA_LIBS:+$SIMCLR_CUDA_LIBS:}$_simclr_here/lib" ;;
  esac
  export SIMCLR_CUDA_LIBS
fi
_simclr_extra="${SIMCLR_CUDA_LIBS:-}"
[[ -n "${CUDA_HOME:-}" && -d "$CUDA_HOME/lib64" ]] && _simclr_dirs="${_simclr_dirs:+$_simclr_dirs:}$CUDA_HOME/lib64"
LD_LIBRARY_PATH="${_simclr_extra:+$_simclr_extra:}${_simclr_dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
LD_LIBRARY_PATH="${LD_LIBRARY_PATH#:}"
LD_LIBRARY_PATH="${LD_LIBRARY_PATH%:}"
export LD_LIBRARY_PATH
unset _simclr_dirs _simclr_extra _simclr_here
# The suites that run the CLI (tests/support/cli.rs `bin`) run the bundle's binary.
[[ -x "$PWD/bin-tools/simclr" ]] && export SIMCLR_BIN="${SIMCLR_BIN:-$PWD/bin-tools/simclr}"
