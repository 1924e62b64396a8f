#!/usr/bin/python3
"""Writes N synthetic photo-like JPEGs (smooth colour fields, shapes, blur,
sensor-like noise; Pillow quality 90, 4:2:0) of the given sizes, cycling:
    gen_photos.py OUTDIR N 500x375,375x500 [SEED]
Used by tests/bench/bench_data.sh so the benchmark needs no downloaded data."""
import sys, os, random
import numpy as np
from PIL import Image, ImageDraw, ImageFilter
out, n, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sizes = [tuple(map(int, s.split("x"))) for s in sizes.split(",")]
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
rng = np.random.default_rng(seed)
random.seed(seed)
os.makedirs(out, exist_ok=True)
for i in range(n):
    w, h = sizes[i % len(sizes)]
    base = Image.fromarray(rng.integers(0, 255, (9, 12, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    d = ImageDraw.Draw(base)
    for _ in range(12):
        x0, y0 = random.randrange(w), random.randrange(h)
        x1, y1 = x0 + random.randrange(w // 3 + 1), y0 + random.randrange(h // 3 + 1)
        col = tuple(random.randrange(256) for _ in range(3))
        (d.ellipse if random.random() < 0.5 else d.rectangle)((x0, y0, x1, y1), fill=col)
    a = np.asarray(base.filter(ImageFilter.GaussianBlur(1.2))).astype(np.int16)
    a = a + rng.normal(0, 7, a.shape).astype(np.int16)
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(os.path.join(out, "img%04d.jpg" % i), quality=90)
