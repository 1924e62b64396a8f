#!/usr/bin/python3
"""Pillow peer of `data_bench decode` (tests/bench/bench_data.sh): for every
JPEG in LIST, REPS times, one thread: open, convert to RGB, resize the shorter
side to SHORT (torchvision's Resize: longer side int(SHORT*long/short), Pillow
BILINEAR with its antialiasing support), center crop CROP with torchvision's
rounding. With --draft, Pillow may first downscale in the DCT domain
(Image.draft), as our decoder does. Prints one JSON object; DUMP receives the
crops of the first 5 images (raw RGB)."""
import json
import sys
import time

from PIL import Image


def main():
    args = [a for a in sys.argv[1:] if a != "--draft"]
    draft = "--draft" in sys.argv
    listfile, short, crop, reps = args[0], int(args[1]), int(args[2]), int(args[3])
    dump = args[4] if len(args) > 4 else None
    paths = [l.strip() for l in open(listfile) if l.strip()]
    out = open(dump, "wb") if dump else None
    t0 = time.perf_counter()
    n = 0
    for r in range(reps):
        for i, p in enumerate(paths):
            im = Image.open(p)
            if draft:
                w, h = im.size
                s = short / min(w, h)
                im.draft("RGB", (int(w * s), int(h * s)))
            im = im.convert("RGB")
            w, h = im.size
            if w <= h:
                nw, nh = short, int(short * h / w)
            else:
                nw, nh = int(short * w / h), short
            im = im.resize((nw, nh), Image.BILINEAR)
            left = int(round((nw - crop) / 2.0))
            top = int(round((nh - crop) / 2.0))
            im = im.crop((left, top, left + crop, top + crop))
            if out and r == 0 and i < 5:
                out.write(im.tobytes())
            n += 1
    dt = time.perf_counter() - t0
    if out:
        out.close()
    print(json.dumps({"impl": "pillow-draft" if draft else "pillow", "images": n,
                      "seconds": round(dt, 4), "images_per_s": round(n / dt, 1)}))


if __name__ == "__main__":
    main()
