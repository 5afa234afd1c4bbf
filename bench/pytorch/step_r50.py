#!/usr/bin/env python3
"""PyTorch eager baseline: one SimCLRv2 pretraining step of r50_1x_sk1 (SK-ResNet-50 with the
ResNet-D stem and shortcut, 3-layer projection head, NT-Xent loss), AMP bf16, channels_last,
cudnn.benchmark. Prints one JSON line with the step time.

    python3 bench/pytorch/step_r50.py [--batch 128] [--size 224] [--steps 30] [--warmup 10]

`--batch` counts images; each image has two augmented views, so the encoder sees 2x batch.
The model follows /work/shared/SIMCLRV2.md; the optimizer is momentum SGD with weight decay
(LARS adds a per-tensor norm ratio, small next to the step).
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def bn(c, zero=False):
    b = nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
    if zero:
        nn.init.zeros_(b.weight)
    return b


def conv_bn_relu(cin, cout, k, s):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), bn(cout), nn.ReLU(inplace=True))


class SKConv(nn.Module):
    """Dense 3x3 conv to 2C (two paths), attention over the paths per channel."""

    def __init__(self, cin, c, stride, ratio=0.0625):
        super().__init__()
        mid = max(int(c * ratio), 32)
        self.c = c
        self.paths = conv_bn_relu(cin, 2 * c, 3, stride)
        self.squeeze = nn.Sequential(nn.Conv2d(c, mid, 1, bias=False), bn(mid), nn.ReLU(inplace=True))
        self.expand = nn.Conv2d(mid, 2 * c, 1, bias=False)

    def forward(self, x):
        u = self.paths(x)
        u0, u1 = u[:, : self.c], u[:, self.c :]
        s = (u0 + u1).mean(dim=(2, 3), keepdim=True)
        z = self.expand(self.squeeze(s))
        a = torch.softmax(torch.stack([z[:, : self.c], z[:, self.c :]]), dim=0)
        return a[0] * u0 + a[1] * u1


def same_avg_pool2x2(x, stride):
    """TF's 2x2 'SAME' average pool: padded at the end, divisor counts the pixels inside."""
    if stride == 2 and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0:
        return F.avg_pool2d(x, 2, 2)
    xp = F.pad(x, (0, 1, 0, 1))
    ones = F.pad(torch.ones_like(x[:1, :1]), (0, 1, 0, 1))
    return F.avg_pool2d(xp, 2, stride) / F.avg_pool2d(ones, 2, stride)


class Bottleneck(nn.Module):
    def __init__(self, cin, c, stride):
        super().__init__()
        self.conv1 = conv_bn_relu(cin, c, 1, 1)
        self.sk = SKConv(c, c, stride)
        self.conv3 = nn.Sequential(nn.Conv2d(c, 4 * c, 1, bias=False), bn(4 * c, zero=True))
        self.stride = stride
        self.proj = None
        if stride != 1 or cin != 4 * c:
            self.proj = nn.Sequential(nn.Conv2d(cin, 4 * c, 1, bias=False), bn(4 * c))

    def forward(self, x):
        sc = x if self.proj is None else self.proj(same_avg_pool2x2(x, self.stride))
        return F.relu(self.conv3(self.sk(self.conv1(x))) + sc)


class SKResNet50(nn.Module):
    def __init__(self, width=1):
        super().__init__()
        w = width
        self.stem = nn.Sequential(
            conv_bn_relu(3, 32 * w, 3, 2), conv_bn_relu(32 * w, 32 * w, 3, 1),
            conv_bn_relu(32 * w, 64 * w, 3, 1), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64 * w
        for i, (n, c) in enumerate(zip([3, 4, 6, 3], [64, 128, 256, 512])):
            for j in range(n):
                layers.append(Bottleneck(cin, c * w, 2 if (j == 0 and i > 0) else 1))
                cin = 4 * c * w
        self.blocks = nn.Sequential(*layers)
        self.out_dim = cin

    def forward(self, x):
        return self.blocks(self.stem(x)).mean(dim=(2, 3))


class Head(nn.Module):
    """3 layers: dense+BN+ReLU twice, then dense to 128 + BN without beta."""

    def __init__(self, d, out=128):
        super().__init__()
        self.l1 = nn.Sequential(nn.Linear(d, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(inplace=True))
        self.l2 = nn.Sequential(nn.Linear(d, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(inplace=True))
        self.l3 = nn.Linear(d, out, bias=False)
        self.bn3 = nn.BatchNorm1d(out, affine=True)
        self.bn3.bias.requires_grad_(False)  # no beta

    def forward(self, x):
        return self.bn3(self.l3(self.l2(self.l1(x))))


def nt_xent(z, tau=0.1):
    """Both directions' mean losses summed, self-similarity masked (the official formulation)."""
    z = F.normalize(z.float(), dim=1)
    n = z.shape[0] // 2
    a, b = z[:n], z[n:]
    big = 1e9
    mask = torch.eye(n, device=z.device) * big
    ab, aa = a @ b.t() / tau, a @ a.t() / tau - mask
    ba, bb = b @ a.t() / tau, b @ b.t() / tau - mask
    labels = torch.arange(n, device=z.device)
    return F.cross_entropy(torch.cat([ab, aa], 1), labels) + F.cross_entropy(torch.cat([ba, bb], 1), labels)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=10)
    args = p.parse_args()

    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    enc = SKResNet50().to(dev).to(memory_format=torch.channels_last)
    head = Head(enc.out_dim).to(dev)
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.SGD([q for q in params if q.requires_grad], lr=0.1, momentum=0.9, weight_decay=1e-6)
    x = torch.randn(2 * args.batch, 3, args.size, args.size, device=dev).to(memory_format=torch.channels_last)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = nt_xent(head(enc(x)))
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / args.steps
    print(json.dumps({
        "bench": "simclrv2_step", "model": "r50_1x_sk1", "framework": "pytorch-eager",
        "amp": "bf16", "channels_last": True, "cudnn_benchmark": True,
        "batch_images": args.batch, "views": 2, "image_size": args.size,
        "ms_per_step": round(dt * 1e3, 3), "images_per_s": round(args.batch / dt, 1),
        "loss": float(loss), "params_m": round(sum(q.numel() for q in enc.parameters()) / 1e6, 2),
        "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
