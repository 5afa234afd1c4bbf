#!/usr/bin/env python3
"""PyTorch baselines for our benches (benches/*.rs): the same kernels and the same pretraining
step, at the same shapes, on the same device, in two modes:

- eager: AMP bf16 autocast where our case is bf16, channels_last activations,
  torch.backends.cudnn.benchmark = True (and cudnn.deterministic = False, PyTorch's default,
  unless --cudnn-deterministic: the counterpart of our --conv-algorithms deterministic);
- compile: the same function through torch.compile (default mode).

Cases come from the JSON lines our benches write (`simclr-cases.jsonl`, see bench/table.py),
so shapes, batch and model always match what we timed; `--preset smoke` builds a tiny CPU set
instead. Times are CUDA-event (GPU) or wall-clock (CPU) medians per iteration; one JSON file out.

    python3 bench/pytorch/kernels.py --cases target/criterion/simclr-cases.jsonl --out pytorch.json
    python3 bench/pytorch/kernels.py --preset smoke --out /tmp/smoke.json   # CPU, seconds
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import traceback

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import skresnet  # noqa: E402


def device_of(case):
    return torch.device("cuda" if case["device"] == "cuda" else "cpu")


def autocast(case):
    """bf16 autocast for bf16 cases on the GPU, and for the step there (our mixed-precision
    target); f32 otherwise."""
    dev = device_of(case)
    if dev.type == "cuda" and (case["dtype"] == "bf16" or case["spec"]["kernel"] == "step"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def act_dtype(case):
    return torch.bfloat16 if case["dtype"] == "bf16" else torch.float32


def nchw(shape_nhwc, dev, dtype, grad=False):
    """Random activations [N, C, H, W] stored channels_last (the NHWC memory of ours)."""
    n, h, w, c = shape_nhwc
    x = torch.randn(n, c, h, w, device=dev).to(dtype).contiguous(memory_format=torch.channels_last)
    return x.requires_grad_(grad)


def wrap(fn, mode):
    return torch.compile(fn) if mode == "compile" else fn


# Each builder returns one iteration (a no-argument function) for a case and a mode.

def build_ntxent(case, mode):
    s, dev = case["spec"], device_of(case)
    z = F.normalize(torch.randn(s["rows"], s["dim"], device=dev), dim=1).to(act_dtype(case)).requires_grad_()
    loss_fn = wrap(lambda z: skresnet.ntxent(z, s["tau"]), mode)

    def it():
        z.grad = None
        with autocast(case):
            loss = loss_fn(z)
        loss.backward()
    return it


def build_bn_act(case, mode):
    s, dev, dt = case["spec"], device_of(case), act_dtype(case)
    c = s["shape_nhwc"][3]
    bn = torch.nn.BatchNorm2d(c).to(dev).train()
    x = nchw(s["shape_nhwc"], dev, dt, grad=True)
    r = nchw(s["shape_nhwc"], dev, dt, grad=True) if s["residual"] else None
    dy = nchw(s["shape_nhwc"], dev, dt)

    def f(x, r):
        return F.relu(bn(x) + r) if r is not None else F.relu(bn(x))
    f = wrap(f, mode)

    def it():
        x.grad = None
        if r is not None:
            r.grad = None
        bn.zero_grad(set_to_none=True)
        with autocast(case):
            y = f(x, r)
        y.backward(dy)
    return it


def build_sk(case, mode):
    s, dev, dt = case["spec"], device_of(case), act_dtype(case)
    n, h, w, c2 = s["shape_nhwc"]
    c = c2 // 2
    u = nchw([n, h, w, c2], dev, dt, grad=True)
    z = torch.randn(n, c2, device=dev).to(dt).requires_grad_()
    dy = nchw([n, h, w, c], dev, dt)
    ds = torch.randn(n, c, device=dev).to(dt)

    def f(u, z):
        u0, u1 = u[:, :c], u[:, c:]
        pooled = (u0 + u1).mean(dim=(2, 3))
        a = torch.softmax(torch.stack([z[:, :c], z[:, c:]]), dim=0)[..., None, None]
        return pooled, a[0] * u0 + a[1] * u1
    f = wrap(f, mode)

    def it():
        u.grad = z.grad = None
        with autocast(case):
            pooled, y = f(u, z)
        torch.autograd.backward([pooled, y], [ds, dy])
    return it


def param_lists(tensors, dev):
    """f32 values (uniform, small) for a list of [shape, flag] from our case."""
    return [((torch.rand(*shape, device=dev) * 2 - 1) * 0.05, flag) for shape, flag in tensors]


def build_lars(case, mode):
    s, dev = case["spec"], device_of(case)
    ps = param_lists(s["tensors"], dev)
    inc = [w for w, skip in ps if not skip]
    exc = [w for w, skip in ps if skip]
    g_inc, g_exc = [0.01 * w for w in inc], [0.01 * w for w in exc]
    v_inc, v_exc = [torch.zeros_like(w) for w in inc], [torch.zeros_like(w) for w in exc]
    step = wrap(skresnet.lars_step, mode)

    def it():
        step(inc, g_inc, v_inc, exc, g_exc, v_exc, s["lr"], s["momentum"], s["eta"], s["weight_decay"])
    return it


def ema_update(t_tr, o_tr, t_buf, o_buf, m):
    torch._foreach_lerp_(t_tr, o_tr, 1.0 - m)
    if t_buf:
        torch._foreach_copy_(t_buf, o_buf)


def build_ema(case, mode):
    s, dev = case["spec"], device_of(case)
    t, o = param_lists(s["tensors"], dev), param_lists(s["tensors"], dev)
    t_tr = [x for x, tr in t if tr]
    o_tr = [x for x, tr in o if tr]
    t_buf = [x for x, tr in t if not tr]
    o_buf = [x for x, tr in o if not tr]
    update = wrap(ema_update, mode)

    def it():
        update(t_tr, o_tr, t_buf, o_buf, s["momentum"])
    return it


def build_step(case, mode):
    s, dev = case["spec"], device_of(case)
    net = skresnet.SimClrNet(s["model"], s["image_size"], s["proj_dim"], s["proj_layers"])
    net = net.to(dev).to(memory_format=torch.channels_last).train()
    ours = s.get("numels")
    if ours is not None:
        theirs = sorted(p.numel() for p in skresnet.trainable(net))
        if theirs != sorted(ours):
            raise RuntimeError(f"the PyTorch {s['model']} does not match ours: {sum(theirs)} vs "
                               f"{sum(ours)} trainable parameters in {len(theirs)} vs {len(ours)} tensors")
    opt = skresnet.Lars(net, lr=s["lr"])
    size, views = s["image_size"], s["views"] * s["images"]
    x = torch.randn(views, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)

    def loss_fn(x):
        z = net(x)
        return skresnet.ntxent(F.normalize(z.float(), dim=1), s["tau"])
    loss_fn = wrap(loss_fn, mode)
    opt_step = wrap(opt.step, mode)

    def it():
        opt.zero_grad()
        with autocast(case):
            loss = loss_fn(x)
        loss.backward()
        opt_step()
    return it


BUILDERS = {"ntxent": build_ntxent, "bn_relu": build_bn_act, "bn_add_relu": build_bn_act,
            "sk": build_sk, "lars": build_lars, "ema": build_ema, "step": build_step}


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def measure(it, dev, iters):
    """Seconds per iteration over `iters` back-to-back iterations."""
    if dev.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            it()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / iters
    t = time.perf_counter()
    for _ in range(iters):
        it()
    return (time.perf_counter() - t) / iters


def time_it(it, dev, min_time, reps, warmup):
    for _ in range(warmup):  # compiles, autotunes (cudnn.benchmark), fills the allocator
        it()
    sync(dev)
    once = measure(it, dev, 1)
    iters = max(1, min(1000, int(min_time / max(once, 1e-7))))
    return statistics.median(measure(it, dev, iters) for _ in range(reps))


def run_case(case, mode, args):
    dev = device_of(case)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device for torch")
    torch.manual_seed(0)
    it = BUILDERS[case["spec"]["kernel"]](case, mode)
    try:
        return time_it(it, dev, args.min_time, args.reps, args.warmup)
    finally:
        del it
        if dev.type == "cuda":
            torch.cuda.empty_cache()


def load_cases(path):
    """Our case lines, one per (group, param): fused and unfused share their inputs."""
    seen, out = set(), []
    with open(path) as f:
        for line in f:
            if line.strip():
                c = json.loads(line)
                if (c["group"], c["param"]) not in seen:
                    seen.add((c["group"], c["param"]))
                    out.append(c)
    return out


def smoke_cases():
    """Tiny CPU cases in our record format, for a check that every builder runs."""
    def case(group, kernel, param, spec, dtype="f32"):
        return {"group": group, "param": param, "device": "cpu", "dtype": dtype,
                "spec": dict(spec, kernel=kernel)}
    with torch.device("meta"):
        net = skresnet.SimClrNet("r18_0.25x_sk1", 32)
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    lars_t = [[list(p.shape), p.ndim == 1] for _, p in named]
    ema_t = [[list(p.shape), True] for _, p in named] + [[[8], False], [[8], False]]
    return [
        case("ntxent-cpu", "ntxent", "2N=64 d=32", {"rows": 64, "dim": 32, "tau": 0.1}),
        case("bn_relu-cpu", "bn_relu", "4x8x8x16", {"shape_nhwc": [4, 8, 8, 16], "residual": False}),
        case("bn_add_relu-cpu", "bn_add_relu", "4x8x8x16", {"shape_nhwc": [4, 8, 8, 16], "residual": True}),
        case("sk-cpu", "sk", "4x8x8x32", {"shape_nhwc": [4, 8, 8, 32]}),
        case("lars-cpu", "lars", "r18_0.25x_sk1", {"tensors": lars_t, "lr": 0.3, "momentum": 0.9,
                                                  "eta": 1e-3, "weight_decay": 1e-6}),
        case("ema-cpu", "ema", "r18_0.25x_sk1", {"tensors": ema_t, "momentum": 0.999}),
        case("step-cpu", "step", "r18_0.25x_sk1 32px 4x2",
             {"model": "r18_0.25x_sk1", "image_size": 32, "images": 4, "views": 2, "tau": 0.1,
              "lr": 0.3, "proj_layers": 3, "proj_dim": 128}),
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cases", help="simclr-cases.jsonl written by our benches")
    src.add_argument("--preset", choices=["smoke"], help="built-in tiny CPU cases")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--modes", default="eager,compile", help="comma-separated: eager, compile")
    p.add_argument("--device", choices=["cpu", "cuda"], help="only cases on this device")
    p.add_argument("--filter", default="", help="only cases whose group/param contains this")
    p.add_argument("--min-time", type=float, default=0.5, help="seconds per timed repetition")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--cudnn-deterministic", action="store_true",
                   help="only deterministic cuDNN algorithms (ours: --conv-algorithms deterministic)")
    args = p.parse_args()

    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.deterministic = args.cudnn_deterministic
    cases = smoke_cases() if args.preset else load_cases(args.cases)
    cases = [c for c in cases if (not args.device or c["device"] == args.device)
             and args.filter in f"{c['group']}/{c['param']}"]
    modes = [m for m in args.modes.split(",") if m]
    results = []
    for case in cases:
        r = {"group": case["group"], "param": case["param"], "device": case["device"], "dtype": case["dtype"]}
        for mode in modes:
            t0 = time.perf_counter()
            try:
                r[f"{mode}_s"] = run_case(case, mode, args)
            except Exception as e:  # out of memory, compile failure: recorded, next case
                r[f"{mode}_s"] = None
                r[f"{mode}_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                traceback.print_exc(limit=3)
            took = time.perf_counter() - t0
            shown = f"{r[f'{mode}_s'] * 1e3:.3f} ms" if r[f"{mode}_s"] is not None else r[f"{mode}_error"]
            print(f"{case['group']}/{case['param']} [{mode}]: {shown} ({took:.1f} s with setup)", flush=True)
        results.append(r)
    meta = {"torch": torch.__version__, "modes": modes, "cudnn_benchmark": True,
            "cudnn_deterministic": args.cudnn_deterministic, "channels_last": True,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    print(f"wrote {args.out} ({len(results)} cases)")


if __name__ == "__main__":
    main()
