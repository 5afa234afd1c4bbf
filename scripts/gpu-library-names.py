"""Every CUDA library function the bundle's executables can look up, looked up in the libraries
this machine loads (through LD_LIBRARY_PATH, as gpu-libpaths.sh sets it). Copied into the GPU
bundle as library-names.py with library-names.txt ("library name" per line, written by
scripts/check-library-symbols.sh --names when the bundle was built).

cudarc looks each name up on its first call and panics when the library lacks it, so one
missing name stops a run at that call; this lists all of them at once, the driver's included
(libcuda is not on PyPI, so CI checks the driver's names only against cuda.h). Prints one line
`library names: ...` and a line per missing name or library; exits 1 when any is missing.

Usage: python3 library-names.py library-names.txt
"""

import ctypes
import sys


def main(path):
    wanted = {}
    for line in open(path):
        if line.strip():
            lib, name = line.split()
            wanted.setdefault(lib, []).append(name)
    found, missing, notes = 0, [], []
    for lib, names in sorted(wanted.items()):
        try:
            handle = ctypes.CDLL(lib)
        except OSError as e:
            notes.append(f"  {lib} not loadable, its {len(names)} names not checked: {e}")
            continue
        for n in names:
            if hasattr(handle, n):
                found += 1
            else:
                missing.append((lib, n))
    total = sum(len(v) for v in wanted.values())
    counts = ", ".join(f"{lib} {len(v)}" for lib, v in sorted(wanted.items()))
    print(f"library names: {found} of {total} found ({counts})")
    for note in notes:
        print(note)
    for lib, n in missing:
        print(f"  MISSING {n} in {lib}")
    return 1 if missing or notes else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
