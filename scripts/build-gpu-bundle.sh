#!/usr/bin/env bash
# Builds the GPU test and bench executables with --features cuda and packs them into the
# git-ignored folder gpu-bundle/ (at most 64 MiB), with scripts that find the CUDA libraries
# of a PyTorch install and run them on a GPU machine:
#   bash gpu-bundle/run.sh                 # every test executable, output shown
#   bash gpu-bundle/run.sh memcheck        # the same under compute-sanitizer --tool memcheck
#   bash gpu-bundle/run.sh '' simclr-lib -- cuda_tests  # the ops' parity tests only
#   bash gpu-bundle/run-bench.sh           # benches + PyTorch baselines -> table (bench/table.py)
#   bash gpu-bundle/validate.sh STAGE       # one stage of the GPU validation, logs into $OUT
#   bash gpu-bundle/validate.sh first-contact  # every check in 8 minutes (first-contact.sh)
# Argument: what to pack, `all` (default), `tests` or `bench` (a smaller bundle).
# SIMCLR_BUNDLE_PROFILE=test (CI): the trainer and benches in the test profile, reusing the
# --features cuda test build; such a bundle refuses to report timings (scripts/bench-bundle.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="$ROOT/gpu-bundle"
LIMIT=$((64 << 20))
WHAT="${1:-all}"
case "$WHAT" in all | tests | bench) ;; *) echo "usage: $0 [all|tests|bench]" >&2; exit 2 ;; esac
# Read here once (scripts/bench-bundle.sh builds with it, the packing below depends on it).
export SIMCLR_BUNDLE_PROFILE="${SIMCLR_BUNDLE_PROFILE:-release}"
case "$SIMCLR_BUNDLE_PROFILE" in
  release | test) ;;
  *) echo "SIMCLR_BUNDLE_PROFILE is '$SIMCLR_BUNDLE_PROFILE'; allowed: release (default), test" >&2; exit 2 ;;
esac

if [[ -z "${NVCC:-}" ]] && ! command -v nvcc >/dev/null && [[ -z "${CUDA_HOME:-}" ]]; then
  NVCC="$(bash scripts/install-cuda-compiler.sh | tail -n1)"
  export NVCC
fi

json="$(mktemp)"
trap 'rm -f "$json"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"
# Library folders for every script of the bundle (sourced, no cd line: no unpack hook).
cp scripts/gpu-libpaths.sh "$OUT/libpaths.sh"

# nvJPEG (optional for simclr, src/cuda/driver/nvjpeg.rs): PyTorch's packages may lack the
# nvidia-nvjpeg wheel, so the bundle carries libnvjpeg.so.13 in lib/, which libpaths.sh puts on
# $SIMCLR_CUDA_LIBS. The wheel is downloaded once into a cache folder; without it (offline) the
# bundle goes without and says so.
NVJPEG_CACHE="${SIMCLR_NVJPEG_CACHE:-$HOME/.cache/simclr-nvjpeg}"
mkdir -p "$NVJPEG_CACHE"
if ! ls "$NVJPEG_CACHE"/nvidia_nvjpeg-13.0.*.whl >/dev/null 2>&1; then
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --dest "$NVJPEG_CACHE" "nvidia-nvjpeg==13.0.*" >&2 ||
    echo "gpu-bundle: could not download nvidia-nvjpeg==13.0.* (offline?); the bundle has no nvJPEG" >&2
fi
if python3 - "$NVJPEG_CACHE" "$OUT/lib" <<'PY'
import glob, os, sys, zipfile
wheels = sorted(glob.glob(os.path.join(sys.argv[1], "nvidia_nvjpeg-13.0.*.whl")))
if not wheels:
    sys.exit(1)
member = "nvidia/cu13/lib/libnvjpeg.so.13"
os.makedirs(sys.argv[2], exist_ok=True)
with zipfile.ZipFile(wheels[-1]) as z, open(os.path.join(sys.argv[2], "libnvjpeg.so.13"), "wb") as out:
    out.write(z.read(member))
print(f"gpu-bundle: lib/libnvjpeg.so.13 from {os.path.basename(wheels[-1])}", file=sys.stderr)
PY
then :; else
  echo "gpu-bundle: no nvidia-nvjpeg 13.0 wheel in $NVJPEG_CACHE; the bundle has no nvJPEG" >&2
  rm -rf "$OUT/lib"
fi
if [[ "$WHAT" != bench ]]; then
cargo test --features cuda --no-run --tests --message-format=json >"$json"
mkdir -p "$OUT/bin"
# Test executables (built with the test harness). Only what touches the GPU: the library's
# unit tests and the cuda_* suites (every executable together is over the 64 MiB a GPU session
# can carry).
while IFS=$'\t' read -r kind name test exe; do
  ((test)) || continue
  [[ $kind == lib ]] && name+=-lib
  [[ $kind == lib || $name == cuda_* ]] || continue
  cp -p "$exe" "$OUT/bin/$name"
  echo "bundled $name ($kind)" >&2
done < <(python3 scripts/cargo-executables.py "$json")
[[ -x "$OUT/bin/simclr-lib" ]] || { echo "gpu-bundle: cargo built no library test executable" >&2; exit 1; }
strip "$OUT"/bin/* 2>/dev/null || true

# What the tests read at run time, relative to the package root (their working directory).
for d in tests/fixtures; do
  if [[ -d "$d" ]]; then mkdir -p "$OUT/$(dirname "$d")" && cp -r "$d" "$OUT/$d"; fi
done

cp scripts/gpu-run-tests.sh "$OUT/run.sh"
chmod +x "$OUT/run.sh"
fi

if [[ "$WHAT" != tests ]]; then
  bash scripts/bench-bundle.sh "$OUT"
fi

# The validation scripts; the trainer they run (bin-tools/simclr) comes with the benches.
if [[ "$WHAT" == all ]]; then
  cp scripts/gpu-validate.sh "$OUT/validate.sh"
  cp scripts/gpu-first-contact.sh "$OUT/first-contact.sh"
  chmod +x "$OUT/validate.sh" "$OUT/first-contact.sh"
fi

# The CUDA library functions the executables can look up, which first-contact.sh looks up in
# the GPU machine's own libraries (library-names.py), the driver's included.
shopt -s nullglob
exes=("$OUT"/bin/* "$OUT"/bin-tools/* "$OUT"/bench/*)
shopt -u nullglob
bash scripts/check-library-symbols.sh --names "$OUT/library-names.txt" "${exes[@]}" >&2
cp scripts/gpu-library-names.py "$OUT/library-names.py"

# Executables (and lib/libnvjpeg.so.13) compress about 2-3x; the scripts unpack them on first use (Python's lzma, since
# the GPU machine is only known to have Python).
payload=()
for d in bin bench bin-tools lib; do [[ -d "$OUT/$d" ]] && payload+=("$d"); done
if (( ${#payload[@]} )); then
  # xz on every core (2 cores: 54 s instead of 96 s for 184 MB, 15% larger); a CI bundle (test
  # profile, never carried to a GPU) at level 1: 14 s, 53 MB against 32 MB at level 6.
  xz_level=-6
  [[ $SIMCLR_BUNDLE_PROFILE == test ]] && xz_level=-1
  XZ_OPT="$xz_level -T0" tar -C "$OUT" -cJf "$OUT/payload.tar.xz" "${payload[@]}"
  (cd "$OUT" && rm -rf "${payload[@]}")
  cat >"$OUT/unpack.sh" <<'UNPACK'
# Sourced by the bundle's scripts: unpacks the executables once.
if [[ -f payload.tar.xz && ! -f .unpacked ]]; then
  python3 -c "import tarfile; tarfile.open('payload.tar.xz').extractall('.')" && touch .unpacked
fi
UNPACK
  # Each script sources it right after changing into the bundle.
  python3 - "$OUT" <<'PY'
import glob, sys
for path in glob.glob(sys.argv[1] + "/*.sh"):
    if path.endswith("/unpack.sh") or path.endswith("/libpaths.sh"):
        continue
    lines = open(path).read().split("\n")
    for i, line in enumerate(lines):
        if line.startswith('cd "$(dirname "$0")"'):
            lines.insert(i + 1, "source ./unpack.sh")
            break
    else:
        sys.exit(f"{path}: no cd line to unpack after")
    open(path, "w").write("\n".join(lines))
PY
fi

size=$(du -sb "$OUT" | cut -f1)
echo "gpu-bundle: $((size >> 20)) MiB in $OUT" >&2
# (A test-profile bundle is never carried: the limit is the release bundle's.)
if (( size > LIMIT )) && [[ $SIMCLR_BUNDLE_PROFILE == release ]]; then
  echo "gpu-bundle is over 64 MiB ($size bytes)" >&2
  exit 1
fi
