#!/usr/bin/env bash
# Every CUDA library function our executables can ask for exists in the libraries a GPU
# machine will load. cudarc (dynamic loading) looks each function up by name on its first call
# and panics ("Missing symbol ...") when the library lacks it, so a name our code reaches but
# PyTorch's libraries do not export would fail only on a GPU, mid-run. This finds it here.
#
# Usage: check-library-symbols.sh EXECUTABLE...   (exit 0: every name found; 1: some missing
# or nothing to check; 2: bad usage or the libraries could not be had)
#        check-library-symbols.sh --names FILE EXECUTABLE...   only writes the names found,
#        "library name" per line (the GPU bundle's library-names.txt, which the bundle's
#        library-names.py looks up in the GPU machine's own libraries, the driver included)
#
# - Names asked for: every name cudarc's driver, cuBLAS, cuDNN and NCCL bindings look up
#   (`load::<_F>("name")` in its sys modules, read from the cudarc source `cargo metadata`
#   names), found as a string in an executable (the name is a literal in the lookup, which
#   stays wherever the optimiser inlined it; where one name begins another, the longest wins).
# - Names exported: the dynamic symbol table (`nm -D --defined-only`) of libcublas.so.13,
#   libcudnn.so.9 (cuDNN 9's front library, which exports the whole API) and libnccl.so.2
#   at the versions PyTorch 2.11 requires (scripts/fetch-real-cuda-libs.sh); the driver's names
#   from CUDA 13.0's cuda.h (the GPU machine's driver, 580, is CUDA 13.0; libcuda itself is not
#   on PyPI). nvJPEG's names are resolved by our own table, checked by tests/nvjpeg_discovery.rs.
set -euo pipefail
names_out=""
if [[ "${1:-}" == --names ]]; then
  (($# > 2)) || { echo "usage: $0 --names FILE EXECUTABLE..." >&2; exit 2; }
  names_out="$(realpath "$2")"
  shift 2
fi
(($# > 0)) || { echo "usage: $0 [--names FILE] EXECUTABLE..." >&2; exit 2; }
exes=()
for e in "$@"; do
  [[ -f "$e" ]] || { echo "check-library-symbols: $e is not a file" >&2; exit 2; }
  exes+=("$(realpath "$e")")
done
cd "$(dirname "$0")/.."

SITE="" CUDA_H=""
if [[ -z "$names_out" ]]; then
  SITE="$(bash scripts/fetch-real-cuda-libs.sh | tail -n1)"
  NVCC="${NVCC:-$(bash scripts/install-cuda-compiler.sh | tail -n1)}"
  CUDA_H="$(dirname "$(dirname "$NVCC")")/include/cuda.h"
  [[ -f "$CUDA_H" ]] || { echo "check-library-symbols: no cuda.h beside $NVCC ($CUDA_H)" >&2; exit 2; }
fi
# cudarc's source, as cargo resolved it (the version in Cargo.lock).
CUDARC="$(cargo metadata --format-version 1 --features cuda | python3 -c '
import json, os, sys
m = json.load(sys.stdin)
print(next((os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"] == "cudarc"), ""))')" || true
[[ -d "$CUDARC/src" ]] || { echo "check-library-symbols: cargo metadata names no cudarc source (found: '$CUDARC')" >&2; exit 2; }

python3 - "$names_out" "$CUDARC" "$CUDA_H" "$SITE" "${exes[@]}" <<'PY'
import os, re, subprocess, sys
names_out, cudarc, cuda_h, site, exes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]

# The library behind each cudarc binding module.
modules = {"driver": "libcuda.so.1", "cublas": "libcublas.so.13", "cudnn": "libcudnn.so.9",
           "nccl": "libnccl.so.2"}
asked = {}  # name -> library
for module, lib in modules.items():
    src = open(os.path.join(cudarc, "src", module, "sys", "mod.rs")).read()
    for name in re.findall(r'load::<_F>\("(\w+)"\)', src):
        asked[name] = lib
if len(asked) < 1000:
    sys.exit(f"check-library-symbols: only {len(asked)} lookups found in {cudarc}; the binding layout changed")

starts = re.compile(rb"cu[A-Z]|cublas[A-Z]|cudnn[A-Z]|nccl[A-Z]")
ident = re.compile(rb"[A-Za-z0-9_]{1,96}")
used = {}  # name -> executables holding it
for exe in exes:
    data = open(exe, "rb").read()
    pos = 0
    while (m := starts.search(data, pos)):
        run = ident.match(data, m.start()).group().decode()
        # The longest looked-up name the run begins with; the rest may be the next literal.
        hit = next((run[:n] for n in range(len(run), 2, -1) if run[:n] in asked), None)
        if hit:
            used.setdefault(hit, set()).add(os.path.basename(exe))
            pos = m.start() + len(hit)
        else:
            pos = m.start() + 1

if names_out:
    with open(names_out, "w") as f:
        f.writelines(f"{asked[n]} {n}\n" for n in sorted(used, key=lambda n: (asked[n], n)))
    print(f"check-library-symbols: {len(used)} names written to {names_out}")
    sys.exit(0 if used else 1)

folders = {"libcublas.so.13": "cu13", "libcudnn.so.9": "cudnn", "libnccl.so.2": "nccl"}
exported = {}
for lib, folder in folders.items():
    nm = subprocess.run(["nm", "-D", "--defined-only", os.path.join(site, "nvidia", folder, "lib", lib)],
                        check=True, capture_output=True, text=True).stdout
    exported[lib] = {line.split()[-1].split("@")[0] for line in nm.splitlines()}
# Every identifier of cuda.h: the versioned names its macros map to (cuMemAlloc_v2) and the
# older ones it still declares, all exported by a CUDA 13.0 driver.
exported["libcuda.so.1"] = set(re.findall(r"\bcu[A-Z]\w*", open(cuda_h).read()))
for lib, syms in exported.items():
    if len(syms) < 50:
        sys.exit(f"check-library-symbols: only {len(syms)} exported names for {lib}")

failed = False
for lib in modules.values():
    names = sorted(n for n in used if asked[n] == lib)
    missing = [n for n in names if n not in exported[lib]]
    source = "CUDA 13.0 cuda.h" if lib == "libcuda.so.1" else lib
    print(f"{lib}: {len(names)} names our executables can look up, {len(missing)} missing from {source}")
    for n in missing:
        print(f"  MISSING {n} (in {', '.join(sorted(used[n]))})")
    if len(names) > len(missing):
        print("  found: " + " ".join(n for n in names if n not in missing))
    if not names:
        print(f"  no {lib} name found in {exes}: nothing was checked")
    failed |= bool(missing) or not names
sys.exit(1 if failed else 0)
PY
