"""The executables of a cargo build, read from its `--message-format=json` output (a file named
by the one argument): one line per compiler artifact that has an executable, four
tab-separated fields: kind (lib, bin, test, bench), target name, 1 if built with the test
harness else 0, path. Used by the GPU bundle's scripts and the first-contact rehearsal."""
import json
import sys

for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    test = 1 if m.get("profile", {}).get("test") else 0
    print(f'{m["target"]["kind"][0]}\t{m["target"]["name"]}\t{test}\t{m["executable"]}')
