#!/usr/bin/env python3
"""One command for the comparison table: runs our criterion benches (benches/*.rs) and the
PyTorch baselines (bench/pytorch/kernels.py) on the same machine, then prints one markdown row
per case: our time (fused kernel, or the whole step), our unfused path, PyTorch eager and
torch.compile, the ratios, the floor (max of FLOP time and byte time) and our time / floor.

    python3 bench/table.py --device cpu --quick --python /path/to/python-with-torch   # here
    python3 bench/table.py --device cuda --features cuda                              # GPU, cargo
    bash gpu-bundle/run-bench.sh                                    # GPU machine without cargo

Writes into --out: ours.log, pytorch.log (raw output), ours.json (our cases with criterion's
median), pytorch.json, table.md. `--ours skip` / `--torch skip` reuse the JSON already there,
so the two halves can run in separate commands and the table be rebuilt from both.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHES = ["ntxent", "bn_act", "sk", "optim", "step"]
CASES_FILE = "simclr-cases.jsonl"


def run_logged(cmd, log, env=None):
    """Runs `cmd`, echoing its output and appending it to `log`; returns the exit status."""
    print("$ " + " ".join(cmd), flush=True)
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        for line in p.stdout:
            sys.stdout.write(line)
            f.write(line)
        return p.wait()


def criterion_filter(args):
    if args.filter:
        return args.filter
    return {"cpu": "cpu/", "cuda": "cuda/"}.get(args.device, "")


def run_ours(args, crit_dir, log):
    """Every bench, cargo or bundled executables, criterion's output under `crit_dir`."""
    os.makedirs(crit_dir, exist_ok=True)
    cases = os.path.join(crit_dir, CASES_FILE)
    if os.path.exists(cases):
        os.remove(cases)
    env = dict(os.environ, CRITERION_HOME=crit_dir, SIMCLR_BENCH_DIR=crit_dir)
    extra = [f for f in [criterion_filter(args)] if f] + (["--quick"] if args.quick else [])
    failed = []
    for b in args.benches.split(","):
        if args.ours == "cargo":
            cmd = ["cargo", "bench", "--bench", b] + (["--features", args.features] if args.features else [])
            cmd += ["--"] + extra
        else:
            cmd = [os.path.join(args.ours, b), "--bench"] + extra
        if run_logged(cmd, log, env) != 0:
            failed.append(b)
    return failed


def estimates(crit_dir, since):
    """criterion's median per benchmark id (seconds), from results written after `since`."""
    out = {}
    for root, _, files in os.walk(crit_dir):
        if os.path.basename(root) != "new" or "benchmark.json" not in files or "estimates.json" not in files:
            continue
        est_path = os.path.join(root, "estimates.json")
        if os.path.getmtime(est_path) < since:
            continue
        with open(os.path.join(root, "benchmark.json")) as f:
            full_id = json.load(f)["full_id"]
        with open(est_path) as f:
            out[full_id] = json.load(f)["median"]["point_estimate"] * 1e-9
    return out


def collect_ours(crit_dir, since, out_json):
    path = os.path.join(crit_dir, CASES_FILE)
    cases = []
    if os.path.exists(path):
        with open(path) as f:
            cases = [json.loads(line) for line in f if line.strip()]
    est = estimates(crit_dir, since)
    for c in cases:
        c["criterion_median_s"] = est.get(c["id"])
    with open(out_json, "w") as f:
        json.dump(cases, f, indent=1)
    return cases


def run_torch(args, cases_json, out_json, log):
    """The PyTorch script over exactly our cases (one JSON line each, from ours.json)."""
    lines = out_json + ".cases.jsonl"
    with open(cases_json) as f, open(lines, "w") as g:
        for c in json.load(f):
            g.write(json.dumps(c) + "\n")
    cmd = [args.python, os.path.join(HERE, "pytorch", "kernels.py"), "--cases", lines, "--out", out_json,
           "--modes", args.modes, "--min-time", str(args.torch_min_time)]
    if args.device in ("cpu", "cuda"):
        cmd += ["--device", args.device]
    if args.filter:
        cmd += ["--filter", args.filter]
    status = run_logged(cmd, log)
    os.remove(lines)
    return status


def fmt_t(s):
    if s is None:
        return "–"
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.1f} µs"


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "–"


def table(cases, torch_results):
    """Markdown: one row per (group, param); `ours` is the fused path (or the step)."""
    rows, order = {}, []
    for c in cases:
        key = (c["group"], c["param"])
        if key not in rows:
            rows[key] = {"floor": c["floor_s"], "bound": c["bound"], "dtype": c["dtype"]}
            order.append(key)
        t = c.get("criterion_median_s") or c.get("median_s")
        if c.get("skipped"):
            rows[key].setdefault("notes", []).append(f"{c['function']} skipped: {c['skipped']}")
        rows[key]["unfused" if c["function"] == "unfused" else "ours"] = t
    for r in torch_results:
        key = (r["group"], r["param"])
        if key in rows:
            rows[key]["eager"], rows[key]["compile"] = r.get("eager_s"), r.get("compile_s")
            for mode in ("eager", "compile"):
                if r.get(f"{mode}_error"):
                    rows[key].setdefault("notes", []).append(f"torch {mode}: {r[f'{mode}_error']}")
    head = ["case", "dtype", "ours", "ours unfused", "PyTorch eager", "torch.compile", "ours/eager",
            "ours/compile", "floor", "ours/floor"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for key in order:
        r = rows[key]
        ours = r.get("ours")
        out.append("| " + " | ".join([
            f"{key[0]} {key[1]}", r["dtype"], fmt_t(ours), fmt_t(r.get("unfused")), fmt_t(r.get("eager")),
            fmt_t(r.get("compile")), ratio(ours, r.get("eager")), ratio(ours, r.get("compile")),
            f"{fmt_t(r['floor'])} ({r['bound']})", ratio(ours, r["floor"])]) + " |")
        notes += [f"- {key[0]} {key[1]}: {n}" for n in r.get("notes", [])]
    legend = ["", "Time ratios: ours/eager or ours/compile below 1 means ours is faster; ours/floor is 1 at the floor."]
    return "\n".join(out + legend + ([""] + notes if notes else []))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                   help="which groups: the -cpu ones, the -cuda ones, or both")
    p.add_argument("--filter", default="", help="criterion name filter (replaces the device filter)")
    p.add_argument("--quick", action="store_true", help="criterion --quick")
    p.add_argument("--benches", default=",".join(BENCHES))
    p.add_argument("--ours", default="cargo",
                   help="'cargo' (cargo bench), a folder of bench executables (the GPU bundle), or 'skip'")
    p.add_argument("--features", default="", help="cargo features, e.g. cuda")
    p.add_argument("--criterion-dir", help="criterion's output (default: target/criterion with cargo, "
                   "else a folder under --out's parent temp space)")
    p.add_argument("--python", default=os.environ.get("SIMCLR_TORCH_PYTHON", sys.executable),
                   help="Python with torch, or 'skip'")
    p.add_argument("--torch", choices=["run", "skip"], default="run")
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("--torch-min-time", type=float, default=0.5)
    p.add_argument("--out", default="target/bench-table")
    args = p.parse_args()

    os.makedirs(args.out, exist_ok=True)
    ours_json = os.path.join(args.out, "ours.json")
    torch_json = os.path.join(args.out, "pytorch.json")
    crit_dir = os.path.abspath(args.criterion_dir or (
        "target/criterion" if args.ours == "cargo" else os.path.join("/tmp", "simclr-criterion")))
    status = 0
    if args.ours != "skip":
        since = time.time() - 1
        failed = run_ours(args, crit_dir, os.path.join(args.out, "ours.log"))
        if failed:
            print(f"benches that failed: {', '.join(failed)}", file=sys.stderr)
            status = 1
        collect_ours(crit_dir, since, ours_json)
    if not os.path.exists(ours_json):
        sys.exit(f"no {ours_json}: run our benches first (without --ours skip)")
    if args.torch == "run" and args.python != "skip":
        if run_torch(args, ours_json, torch_json, os.path.join(args.out, "pytorch.log")) != 0:
            status = 1
    with open(ours_json) as f:
        cases = json.load(f)
    if args.device in ("cpu", "cuda"):
        cases = [c for c in cases if c["device"] == args.device]
    torch_results = []
    if os.path.exists(torch_json):
        with open(torch_json) as f:
            torch_results = json.load(f)["results"]
    md = table(cases, torch_results)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(md + "\n")
    print("\n" + md)
    sys.exit(status)


if __name__ == "__main__":
    main()
