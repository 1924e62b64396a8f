#!/bin/bash
# Data pipeline benchmarks (helper "data"; issue 4):
#  1. JPEG decode + resize (shorter side 256, antialiased) + center crop 224,
#     one thread, on the same synthetic photos: sweepd (libjpeg-turbo with
#     DCT-domain downscaling + our resize) against Pillow (Debian python3-pil,
#     torchvision's default loader path) and Pillow with Image.draft. Also the
#     mean absolute difference of the output pixels against Pillow.
#  2. Training epochs (augmentation on, one thread) read from the decoded cache
#     against decoding every image every epoch: Fashion-MNIST at input 32 and
#     the photos at input 224.
#  3. `sweep-worker import-idx` of the full Fashion-MNIST training set (60,000).
# Figures are ratios against a peer measured in the same run; no thresholds.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SWEEP_BUILD:-$ROOT/build}
B=$BUILD/tests/data_bench
W=$BUILD/sweep-worker
PY=/usr/bin/python3
HERE=$ROOT/tests/bench
FM=/usr/share/datasets/fashion-mnist
T=$(mktemp -d "${TMPDIR:-/tmp}/sweepbench.XXXXXX")
trap 'rm -rf "$T"' EXIT

if [ ! -x "$B" ]; then
    make -C "$ROOT" --no-print-directory BUILD="$BUILD" "$B" >/dev/null || exit 1
fi
num() { sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo "== data: decode + resize + center crop, one thread =="
$PY "$HERE/gen_photos.py" "$T/photos/a" 60 500x375,375x500 1 || exit 1
$PY "$HERE/gen_photos.py" "$T/photos/b" 60 500x375,375x500 2 || exit 1
$PY "$HERE/gen_photos.py" "$T/large" 12 1600x1200,2048x1536 3 || exit 1
ls "$T"/photos/*/*.jpg >"$T/small.list"
ls "$T"/large/*.jpg >"$T/large.list"
for set in small large; do
    reps=3
    [ $set = large ] && reps=2
    ours=$("$B" decode "$T/$set.list" 256 224 $reps "$T/$set.ours")
    pil=$($PY "$HERE/pil_decode.py" "$T/$set.list" 256 224 $reps "$T/$set.pil")
    pild=$($PY "$HERE/pil_decode.py" "$T/$set.list" 256 224 $reps --draft)
    o=$(num "$ours" images_per_s)
    p=$(num "$pil" images_per_s)
    pd=$(num "$pild" images_per_s)
    diff=$($PY -c "
import sys
a = open('$T/$set.ours', 'rb').read(); b = open('$T/$set.pil', 'rb').read()
print('%.3f' % (sum(abs(x - y) for x, y in zip(a, b)) / max(1, len(a))))")
    sizes="500x375/375x500"
    [ $set = large ] && sizes="1600x1200/2048x1536"
    echo "data decode $sizes -> 224: sweepd $o img/s, Pillow $p img/s ($(ratio "$o" "$p")x," \
        "target >= 2x), Pillow+draft $pd img/s ($(ratio "$o" "$pd")x); mean abs pixel diff vs Pillow $diff"
done

epoch_line() {
    echo "data epoch $1, augmentation on: cache $(num "$2" cached_aug_images_per_s) img/s," \
        "decode every epoch $(num "$2" decode_aug_images_per_s) img/s ($(num "$2" aug_ratio)x)"
    echo "data epoch $1, augmentation off: cache $(num "$2" cached_noaug_images_per_s) img/s," \
        "decode every epoch $(num "$2" decode_noaug_images_per_s) img/s ($(num "$2" noaug_ratio)x)"
}
echo "== data: training epochs from the decoded cache vs decoding every epoch (one thread) =="
if "$W" import-idx "$FM/t10k-images-idx3-ubyte.gz" "$FM/t10k-labels-idx1-ubyte.gz" "$T/fm10k" \
    >/dev/null 2>"$T/err"; then
    "$B" epoch "$T/fm10k" 32 "$T/cache" 1 128 >/dev/null # builds the cache
    r=$("$B" epoch "$T/fm10k" 32 "$T/cache" 2 128)
    epoch_line "fashion-mnist t10k 28x28 @32" "$r"
else
    echo "data epoch fashion-mnist: import-idx failed: $(head -c 300 "$T/err")"
fi
r=$("$B" epoch "$T/photos" 224 "$T/cache" 1 32)
echo "data cache build photos @224 (256x256 squares, 120 images): $(num "$r" open_seconds) s"
r=$("$B" epoch "$T/photos" 224 "$T/cache" 2 32)
epoch_line "photos 500x375 @224" "$r"

echo "== data: import-idx of the full Fashion-MNIST training set =="
s=$SECONDS
if out=$("$W" import-idx "$FM/train-images-idx3-ubyte.gz" "$FM/train-labels-idx1-ubyte.gz" \
    "$T/fm60k" 2>"$T/err"); then
    dt=$((SECONDS - s))
    n=$(find "$T/fm60k" -name '*.jpg' | wc -l)
    echo "data import-idx train: $n JPEGs in ${dt}s; $out"
else
    echo "data import-idx train failed: $(head -c 300 "$T/err")"
fi
