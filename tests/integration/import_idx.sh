#!/bin/bash
# sweep-worker import-idx on Debian's Fashion-MNIST test set (10,000 images):
# counts per class, JSON summary, pixels of a sample of JPEGs against the idx
# source (mean absolute error < 2, decoded independently with Pillow), the
# --limit/--classes/--names/--quality options, and clear errors for bad input.
source "$(dirname "$0")/lib.sh"
export LC_ALL=C
W=$BUILD/sweep-worker
D=/usr/share/datasets/fashion-mnist
IMG=$D/t10k-images-idx3-ubyte.gz
LAB=$D/t10k-labels-idx1-ubyte.gz

if [ ! -r "$IMG" ] || [ ! -r "$LAB" ]; then
    not_ok "Debian dataset-fashion-mnist is installed ($IMG)"
    done_testing
fi

out=$("$W" import-idx "$IMG" "$LAB" "$T/fm" 2>"$T/err")
is "import-idx exits 0" "$?" 0
like "summary JSON counts 10000 images" "$out" '"images":10000'
is "10 class folders" "$(ls "$T/fm" | wc -l)" 10
is "folder names are the Fashion-MNIST classes" "$(ls "$T/fm" | tr '\n' ' ')" \
    "Ankle_boot Bag Coat Dress Pullover Sandal Shirt Sneaker T-shirt_top Trouser "
counts=$(for c in "$T"/fm/*; do ls "$c" | wc -l; done | sort -u | tr '\n' ' ')
is "1000 JPEGs in every class" "$counts" "1000 "
is "no temporary files left" "$(find "$T/fm" -name '*.tmp' | wc -l)" 0
is "image 0 (label 9) is Ankle_boot/00000.jpg" "$(ls "$T/fm/Ankle_boot" | head -1)" "00000.jpg"

# Pixels: every 97th image against the idx source, decoded by Pillow.
mae=$(/usr/bin/python3 - "$IMG" "$LAB" "$T/fm" <<'PY'
import gzip, sys, os
from PIL import Image
img = gzip.open(sys.argv[1]).read()
lab = gzip.open(sys.argv[2]).read()
names = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
         "Sneaker", "Bag", "Ankle_boot"]
n = int.from_bytes(img[4:8], "big")
tot = cnt = 0
worst = 0.0
for i in range(0, n, 97):
    src = img[16 + i * 784: 16 + (i + 1) * 784]
    im = Image.open(os.path.join(sys.argv[3], names[lab[8 + i]], "%05d.jpg" % i))
    assert im.size == (28, 28) and im.mode == "L", (im.size, im.mode)
    px = im.tobytes()
    e = sum(abs(a - b) for a, b in zip(px, src)) / 784.0
    worst = max(worst, e)
    tot += e
    cnt += 1
print("%.3f %.3f %d" % (tot / cnt, worst, cnt))
PY
)
read -r mean worst cnt <<<"$mae"
echo "# mean abs pixel error $mean (worst image $worst) over $cnt images"
check "mean abs pixel error < 2 at quality 95" awk -v m="${mean:-99}" 'BEGIN{exit !(m < 2)}'
check "worst image error < 4" awk -v m="${worst:-99}" 'BEGIN{exit !(m < 4)}'

# --limit and --classes (with a plain, uncompressed idx file too).
gzip -dc "$LAB" >"$T/labels.idx"
out=$("$W" import-idx "$IMG" "$T/labels.idx" "$T/sub" --classes 5,7,9 --limit 20 --quality 80 2>"$T/err")
is "--classes/--limit exit 0" "$?" 0
is "only the chosen classes" "$(ls "$T/sub" | tr '\n' ' ')" "Ankle_boot Sandal Sneaker "
is "--limit 20 per class" "$(find "$T/sub" -name '*.jpg' | wc -l)" 60
like "summary names the classes" "$out" '"Sandal":20'

# --names
"$W" import-idx "$IMG" "$LAB" "$T/named" --names a,b,c,d,e,f,g,h,i,j --limit 1 >/dev/null 2>&1
is "--names renames the folders" "$(ls "$T/named" | tr '\n' ' ')" "a b c d e f g h i j "
"$W" import-idx "$IMG" "$LAB" "$T/short" --names a,b --limit 1 >/dev/null 2>"$T/err"
is "too few --names is a usage error (2)" "$?" 2
like "the error says which label lacks a name" "$(cat "$T/err")" 'label [0-9]+ .*no name'

# Errors.
"$W" import-idx "$LAB" "$IMG" "$T/x" >/dev/null 2>"$T/err"
is "swapped files: data error (3)" "$?" 3
like "the error names the file" "$(cat "$T/err")" 't10k-labels-idx1-ubyte.gz'
printf 'garbage!' >"$T/bad.idx"
"$W" import-idx "$T/bad.idx" "$LAB" "$T/x" >/dev/null 2>"$T/err"
is "bad magic: exit 3" "$?" 3
like "bad magic message" "$(cat "$T/err")" 'bad.idx: not an idx file'
head -c 1000 "$T/labels.idx" >"$T/short.idx"
"$W" import-idx "$IMG" "$T/short.idx" "$T/x" >/dev/null 2>"$T/err"
is "truncated labels: exit 3" "$?" 3
like "truncated message" "$(cat "$T/err")" 'short.idx: truncated'
"$W" import-idx "$IMG" "$LAB" >/dev/null 2>&1
is "missing OUTDIR: exit 2" "$?" 2
"$W" import-idx "$IMG" "$LAB" "$T/x" --quality 0 >/dev/null 2>"$T/err"
is "--quality 0: exit 2" "$?" 2
is "--quality 0: the one number wording" "$(cat "$T/err")" \
    'import-idx: --quality: expected an integer from 1 to 100, got "0"'
"$W" import-idx --help >"$T/help" 2>&1
is "--help exits 0" "$?" 0
like "--help shows usage" "$(cat "$T/help")" 'usage: sweep-worker import-idx'
done_testing
