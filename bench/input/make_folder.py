"""Writes the image folder the input-pipeline benchmark reads: ImageNet's layout
(<out>/train/<class>/<k>.JPEG), 500x375 pictures (ImageNet's most common size) saved at JPEG
quality 90, with smooth structure and sensor-like noise so they compress to photo-like sizes
(~100 kB). Deterministic for a seed.

    python3 bench/input/make_folder.py OUT [--classes 8] [--per-class 64] [--seed 0]
                                           [--height 375] [--width 500]
"""
import argparse
import os

import numpy as np
from PIL import Image


def picture(rng, h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        for _ in range(4):
            fx, fy, ph = rng.uniform(0.002, 0.05), rng.uniform(0.002, 0.05), rng.uniform(0, 6.3)
            img[..., c] += np.sin(x * fx + y * fy + ph) * rng.uniform(20, 50)
    img += rng.normal(0, 12, size=img.shape)
    return np.clip(img + 128, 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--per-class", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--height", type=int, default=375)
    ap.add_argument("--width", type=int, default=500)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    for c in range(a.classes):
        d = os.path.join(a.out, "train", f"n{c:08d}")
        os.makedirs(d, exist_ok=True)
        for k in range(a.per_class):
            Image.fromarray(picture(rng, a.height, a.width)).save(os.path.join(d, f"{k:05d}.JPEG"), quality=90)


if __name__ == "__main__":
    main()
