"""The SimCLRv2 network of our engine, in PyTorch, for baselines: the SK-ResNet family
`r{depth}_{width}x_sk{0|1}` (src/nn/resnet.rs), the 3-layer projection head (src/nn/head.rs),
NT-Xent with our convention (src/ops/ntxent), and LARS (src/optim/lars.rs) as multi-tensor
(`torch._foreach_*`) updates.

Structure, as ours: SK conv = 3x3 conv to 2C, BN + ReLU, attention from the mean of the two
paths through 1x1 conv (C -> max(int(C/16), 32)), BN + ReLU, 1x1 conv to 2C, softmax over the
paths. With SK, the ResNet-D stem (3x3/2 to 32w, 32w, 64w, then 3x3/2 max pool) and shortcut
(2x2 average pool at the block's stride, padded at the end, then a stride-1 1x1 conv); without,
a 7x7/2 stem and strided 1x1 shortcut. Images of 32 px or less get one 3x3 stride-1 conv and no
pool. Every stage's first block has a projection shortcut; the last BN of each block starts at
gamma 0. `python3 skresnet.py r50_1x_sk1` prints the parameter count.
"""
import re
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYERS = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3]),
          101: ("bottleneck", [3, 4, 23, 3]), 152: ("bottleneck", [3, 8, 36, 3]),
          200: ("bottleneck", [3, 24, 36, 3])}
SK_RATIO, SK_MIN = 0.0625, 32


def parse(name):
    """`r50_1x_sk1` -> (depth, width, sk)."""
    m = re.fullmatch(r"r(\d+)_([0-9.]+)x_sk([01])", name)
    if not m or int(m.group(1)) not in LAYERS:
        raise ValueError(f"unknown model {name!r}: expected r{{depth}}_{{width}}x_sk{{0|1}}")
    return int(m.group(1)), float(m.group(2)), m.group(3) == "1"


def bn(c, zero=False):
    b = nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
    if zero:
        nn.init.zeros_(b.weight)
    return b


def conv(cin, cout, k, s=1):
    return nn.Conv2d(cin, cout, k, s, k // 2, bias=False)


def conv_bn_relu(cin, cout, k, s):
    return nn.Sequential(conv(cin, cout, k, s), bn(cout), nn.ReLU(inplace=True))


class SKConv(nn.Module):
    def __init__(self, cin, c, stride):
        super().__init__()
        mid = max(int(c * SK_RATIO), SK_MIN)
        self.c = c
        self.paths = conv_bn_relu(cin, 2 * c, 3, stride)
        self.squeeze = nn.Sequential(conv(c, mid, 1), bn(mid), nn.ReLU(inplace=True))
        self.expand = conv(mid, 2 * c, 1)

    def forward(self, x):
        u = self.paths(x)
        u0, u1 = u[:, : self.c], u[:, self.c:]
        s = (u0 + u1).mean(dim=(2, 3), keepdim=True)
        z = self.expand(self.squeeze(s))
        a = torch.softmax(torch.stack([z[:, : self.c], z[:, self.c:]]), dim=0)
        return a[0] * u0 + a[1] * u1


def avg_pool2x2(x, stride):
    """2x2 windows at `stride` over the input padded by one row and column at the end: zeros
    that count at stride 2, cells averaged over the image at stride 1 (the official ResNet-D)."""
    if stride == 2 and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0:
        return F.avg_pool2d(x, 2, 2)
    xp = F.pad(x, (0, 1, 0, 1))
    if stride == 2:
        return F.avg_pool2d(xp, 2, 2)
    ones = F.pad(torch.ones_like(x[:1, :1]), (0, 1, 0, 1))
    return F.avg_pool2d(xp, 2, stride, divisor_override=1) / F.avg_pool2d(ones, 2, stride, divisor_override=1)


class Shortcut(nn.Module):
    def __init__(self, cin, cout, stride, resnet_d):
        super().__init__()
        self.pool = stride if resnet_d else None
        self.conv = conv(cin, cout, 1, 1 if resnet_d else stride)
        self.bn = bn(cout)

    def forward(self, x):
        if self.pool is not None:
            x = avg_pool2x2(x, self.pool)
        return self.bn(self.conv(x))


class Block(nn.Module):
    def __init__(self, kind, cin, c, stride, project, sk):
        super().__init__()
        cout = c * (4 if kind == "bottleneck" else 1)
        self.shortcut = Shortcut(cin, cout, stride, sk) if project else None
        if kind == "basic":
            self.body = nn.Sequential(conv_bn_relu(cin, c, 3, stride), conv(c, c, 3), bn(c, zero=True))
        else:
            middle = SKConv(c, c, stride) if sk else conv_bn_relu(c, c, 3, stride)
            self.body = nn.Sequential(conv_bn_relu(cin, c, 1, 1), middle, conv(c, cout, 1), bn(cout, zero=True))

    def forward(self, x):
        sc = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.body(x) + sc)


class SKResNet(nn.Module):
    def __init__(self, name, image_size=224, in_channels=3):
        super().__init__()
        depth, width, sk = parse(name)
        kind, layers = LAYERS[depth]
        w = round(64 * width)
        if image_size <= 32:
            stem = [conv_bn_relu(in_channels, w, 3, 1)]
        elif sk:
            stem = [conv_bn_relu(in_channels, w // 2, 3, 2), conv_bn_relu(w // 2, w // 2, 3, 1),
                    conv_bn_relu(w // 2, w, 3, 1), nn.MaxPool2d(3, 2, 1)]
        else:
            stem = [conv_bn_relu(in_channels, w, 7, 2), nn.MaxPool2d(3, 2, 1)]
        self.stem = nn.Sequential(*stem)
        blocks, cin = [], w
        for i, n in enumerate(layers):
            c = w << i
            for b in range(n):
                blocks.append(Block(kind, cin, c, (1 if i == 0 else 2) if b == 0 else 1, b == 0, sk))
                cin = c * (4 if kind == "bottleneck" else 1)
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = cin

    def forward(self, x):
        return self.blocks(self.stem(x)).mean(dim=(2, 3))


class Head(nn.Module):
    """Dense (no bias) + BN + ReLU at the input width, then dense to `out` + BN without beta."""

    def __init__(self, d, out=128, layers=3):
        super().__init__()
        hidden = [nn.Sequential(nn.Linear(d, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(inplace=True))
                  for _ in range(layers - 1)]
        self.hidden = nn.Sequential(*hidden)
        self.last = nn.Linear(d, out, bias=False)
        self.bn = nn.BatchNorm1d(out)
        self.bn.bias.requires_grad_(False)  # no beta: stays 0

    def forward(self, x):
        return self.bn(self.last(self.hidden(x)))


class SimClrNet(nn.Module):
    def __init__(self, name, image_size=224, proj_dim=128, proj_layers=3):
        super().__init__()
        self.encoder = SKResNet(name, image_size)
        self.head = Head(self.encoder.out_dim, proj_dim, proj_layers)

    def forward(self, x):
        return self.head(self.encoder(x))


def ntxent(z, tau):
    """Our convention: mean over all 2N anchors of -log softmax at the positive, self masked.
    `z` holds view a in rows 0..N and view b in rows N..2N, already normalised."""
    m = z.shape[0]
    logits = (z @ z.t()).float() / tau
    logits = logits.masked_fill(torch.eye(m, dtype=torch.bool, device=z.device), float("-inf"))
    labels = (torch.arange(m, device=z.device) + m // 2) % m
    return F.cross_entropy(logits, labels)


def trainable(module):
    return [p for p in module.parameters() if p.requires_grad]


def lars_groups(named):
    """(decayed + trust-ratio tensors, excluded tensors): biases and BN parameters excluded."""
    inc, exc = [], []
    for name, p in named:
        if p.requires_grad:
            (exc if p.ndim == 1 else inc).append(p)
    return inc, exc


def lars_step(w_inc, g_inc, v_inc, w_exc, g_exc, v_exc, lr, momentum=0.9, eta=1e-3, wd=1e-6):
    """One LARS step as multi-tensor ops: all norms, then all updates (in place)."""
    if w_inc:
        g = torch._foreach_add(g_inc, w_inc, alpha=wd)
        wn = torch.stack(torch._foreach_norm(w_inc))
        gn = torch.stack(torch._foreach_norm(g))
        trust = torch.where((wn > 0) & (gn > 0), eta * wn / gn, torch.ones_like(wn))
        torch._foreach_mul_(g, list((trust * lr).unbind()))
        torch._foreach_mul_(v_inc, momentum)
        torch._foreach_add_(v_inc, g)
        torch._foreach_sub_(w_inc, v_inc)
    if w_exc:
        torch._foreach_mul_(v_exc, momentum)
        torch._foreach_add_(v_exc, g_exc, alpha=lr)
        torch._foreach_sub_(w_exc, v_exc)


class Lars:
    """LARS over a module's parameters, velocities kept here."""

    def __init__(self, module, lr=0.3, wd=1e-6):
        self.inc, self.exc = lars_groups(module.named_parameters())
        self.v_inc = [torch.zeros_like(p) for p in self.inc]
        self.v_exc = [torch.zeros_like(p) for p in self.exc]
        self.lr, self.wd = lr, wd

    @torch.no_grad()
    def step(self):
        have = lambda ps, vs: [(p, p.grad, v) for p, v in zip(ps, vs) if p.grad is not None]
        a, b = have(self.inc, self.v_inc), have(self.exc, self.v_exc)
        lars_step([x[0] for x in a], [x[1] for x in a], [x[2] for x in a],
                  [x[0] for x in b], [x[1] for x in b], [x[2] for x in b], self.lr, wd=self.wd)

    def zero_grad(self):
        for p in self.inc + self.exc:
            p.grad = None


def count(name, image_size=224):
    with torch.device("meta"):
        net = SimClrNet(name, image_size)
    enc = sum(p.numel() for p in trainable(net.encoder))
    return enc, sum(p.numel() for p in trainable(net))


if __name__ == "__main__":
    for n in sys.argv[1:] or ["r50_1x_sk1"]:
        enc, total = count(n)
        print(f"{n}: encoder {enc / 1e6:.2f} M, encoder + head {total / 1e6:.2f} M trainable parameters")
