"""torchvision's input pipeline on the benchmark folder, measured like `simclr bench --task
input`: CPU time (user + system) per image for decoding alone, for SimCLR's two-view
augmentation alone, and for a DataLoader with worker processes, so that per-core figures do not
depend on what else the machine runs.

The augmentation is SimCLR's (torchvision v1 transforms on PIL images): RandomResizedCrop(size,
scale 0.08-1, bilinear), horizontal flip, colour jitter (0.8, 0.8, 0.8, 0.2) with p 0.8, random
grayscale p 0.2, Gaussian blur (kernel 10% of the size, sigma 0.1-2) with p 0.5, ToTensor.
The DataLoader's CPU time includes its workers (reaped children); its start-up is removed by
timing `warmup` batches alone and `warmup + steps` batches, and taking the difference.

    python3 bench/input/torchvision_input.py FOLDER [--size 224] [--batch 32] [--steps 8]
                                                    [--warmup 2] [--workers 2] [--single 128]
"""
import argparse
import os
import resource
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms as T


def simclr_augment(size):
    k = int(0.1 * size) // 2 * 2 + 1
    return T.Compose([
        T.RandomResizedCrop(size, scale=(0.08, 1.0)),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(k, sigma=(0.1, 2.0))], p=0.5),
        T.ToTensor(),
    ])


class TwoViews:
    def __init__(self, t):
        self.t = t

    def __call__(self, x):
        return self.t(x), self.t(x)


def cpu(children=False):
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    u = resource.getrusage(who)
    return u.ru_utime + u.ru_stime


def loader_cpu(ds, batches, a):
    sub = Subset(ds, range(min(len(ds), batches * a.batch)))
    c0, s0, t0 = cpu(), cpu(True), time.perf_counter()
    it = iter(DataLoader(sub, batch_size=a.batch, num_workers=a.workers, shuffle=False, drop_last=True))
    n = sum(1 for _ in it)
    del it  # joins the workers, so their CPU time is in RUSAGE_CHILDREN
    return n, cpu() - c0 + cpu(True) - s0, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--single", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(1)
    root = os.path.join(a.folder, "train") if os.path.isdir(os.path.join(a.folder, "train")) else a.folder
    aug = simclr_augment(a.size)
    ds = datasets.ImageFolder(root)
    paths = [p for p, _ in ds.samples[: a.single]]
    print(f"torch {torch.__version__}, torchvision {T.__name__ and __import__('torchvision').__version__}, "
          f"{len(ds)} images in {root}, {a.size} px, two views")

    def line(what, n, secs):
        print(f"{what:<44} {n / secs:8.1f} images per CPU-second ({secs * 1e3 / n:.2f} ms CPU per image, {n} images)")

    c0 = time.process_time()
    imgs = [Image.open(p).convert("RGB") for p in paths]
    line("decode, full size (PIL)", len(paths), time.process_time() - c0)
    c0 = time.process_time()
    for im in imgs:
        aug(im), aug(im)
    line("two-view augmentation (torchvision)", len(imgs), time.process_time() - c0)

    ds.transform = TwoViews(aug)
    _, cw, _ = loader_cpu(ds, a.warmup, a)
    n, ct, wall = loader_cpu(ds, a.warmup + a.steps, a)
    images = (n - a.warmup) * a.batch
    line(f"DataLoader, {a.workers} workers (self + children)", images, ct - cw)
    print(f"DataLoader wall rate: {n * a.batch / wall:.1f} images/s on {a.workers} workers (start-up included)")


if __name__ == "__main__":
    main()
