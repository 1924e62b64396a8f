#!/bin/bash
# sweep-worker predict and bench, end to end: JSON lines per image (top-K
# sorted probabilities that agree with the logits, class names and input
# size from a checkpoint's metadata, index names without it), results that do
# not depend on how images are grouped into batches, --raw, 1000-class
# ImageNet-style weights, and the error paths (unreadable image: error line
# and exit 3 after the others; bad weights: exit 4; bad arguments: exit 2).
# A full-width resnet18 agrees with torchvision on the same JPEGs. Also checks
# that `sweep-worker bench` prints its JSON keys and runs a real OpenBLAS
# kernel for this CPU (not the "Prescott" fallback) on AVX2/AVX-512.
source "$(dirname "$0")/lib.sh"
W=$BUILD/sweep-worker
MK=$BUILD/tests/train_mkdata
PY=/usr/bin/python3
FIX=$ROOT/tests/fixtures/parity_basic.safetensors # width-4 BasicBlock, 5 classes, input_size 48

if [ ! -x "$MK" ]; then
    not_ok "$MK is built (make test-bins)"
    done_testing
fi

# st_tool.py: small safetensors edits with the standard library only.
cat >"$T/st_tool.py" <<'PY'
import json, random, struct, sys

def read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]

def write(path, header, data):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)

cmd = sys.argv[1]
if cmd == "meta":          # meta IN OUT key=value ...: copy with __metadata__ replaced
    header, data = read(sys.argv[2])
    header["__metadata__"] = dict(a.split("=", 1) for a in sys.argv[4:])
    write(sys.argv[3], header, data)
elif cmd == "make":        # make OUT CLASSES WIDTH: random BasicBlock [1,1,1,1] weights
    out, classes, w = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rnd = random.Random(7)
    tensors = []
    def conv(name, o, i, k):
        tensors.append((name, [o, i, k, k], [rnd.gauss(0, (2.0 / (o * k * k)) ** 0.5) for _ in range(o * i * k * k)]))
    def bn(name, c):
        for s, v in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            tensors.append((name + "." + s, [c], [v] * c))
    conv("conv1.weight", w, 3, 7); bn("bn1", w)
    inp = w
    for l in range(1, 5):
        p = w * 2 ** (l - 1)
        conv("layer%d.0.conv1.weight" % l, p, inp, 3); bn("layer%d.0.bn1" % l, p)
        conv("layer%d.0.conv2.weight" % l, p, p, 3); bn("layer%d.0.bn2" % l, p)
        if l > 1:
            conv("layer%d.0.downsample.0.weight" % l, p, inp, 1); bn("layer%d.0.downsample.1" % l, p)
        inp = p
    tensors.append(("fc.weight", [classes, inp], [rnd.uniform(-0.1, 0.1) for _ in range(classes * inp)]))
    tensors.append(("fc.bias", [classes], [rnd.uniform(-0.1, 0.1) for _ in range(classes)]))
    header, data, off = {}, b"", 0
    for name, shape, vals in tensors:
        blob = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        data += blob
        off += len(blob)
    write(out, header, data)
elif cmd == "check":       # check FILE TOP CLASSES NAMES|-: validate predict's JSON lines
    top, classes, names = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    import math
    for line in open(sys.argv[2]):
        o = json.loads(line)
        if "error" in o:
            continue
        assert list(o) == ["file", "top", "logits"], list(o)
        lg = o["logits"]
        assert len(lg) == classes, len(lg)
        assert len(o["top"]) == top, len(o["top"])
        m = max(lg)
        z = sum(math.exp(v - m) for v in lg)
        prev = 2.0
        for t in o["top"]:
            assert list(t) == ["class", "index", "prob"], list(t)
            want = names.split(",")[t["index"]] if names != "-" else str(t["index"])
            assert t["class"] == want, (t, want)
            assert abs(t["prob"] - math.exp(lg[t["index"]] - m) / z) < 1e-5, t
            assert t["prob"] <= prev + 1e-7
            prev = t["prob"]
        assert o["top"][0]["index"] == lg.index(m)
    print("ok")
elif cmd == "logits":      # logits FILE: one line per image, the logits
    for line in open(sys.argv[2]):
        o = json.loads(line)
        print(o["file"], " ".join("%.5f" % v for v in o.get("logits", [])))
elif cmd == "maxdiff":     # maxdiff A B: largest logit difference between two runs
    a = [json.loads(l) for l in open(sys.argv[2])]
    b = [json.loads(l) for l in open(sys.argv[3])]
    assert [x["file"] for x in a] == [x["file"] for x in b]
    print(max(abs(u - v) for x, y in zip(a, b) for u, v in zip(x["logits"], y["logits"])))
PY
st() { "$PY" "$T/st_tool.py" "$@"; }
# le A B: passes when the number A <= B.
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

"$MK" "$T/img" 2 3 64 >/dev/null || not_ok "train_mkdata writes test images"
"$MK" "$T/raw" 1 1 48 5 >/dev/null
imgs=("$T"/img/*/*.jpg)
is "six test images" "${#imgs[@]}" 6

# --- plain weights: index names, input size from the fixture's metadata (48)
"$W" predict --weights "$FIX" "${imgs[@]}" >"$T/p1" 2>"$T/e1"
is "predict exits 0" "$?" 0
is "one line per image" "$(wc -l <"$T/p1")" 6
is "lines in argument order" "$(st logits "$T/p1" | cut -d' ' -f1 | tr '\n' ' ')" "${imgs[*]} "
is "JSON lines valid: top 5 sorted, probs = softmax(logits), names are indices" \
    "$(st check "$T/p1" 5 5 - 2>&1)" ok

"$W" predict --weights "$FIX" --top 2 --batch 1 "${imgs[@]}" >"$T/p2" 2>/dev/null
is "--top 2 --batch 1 exits 0" "$?" 0
is "--top 2 lists two classes" "$(st check "$T/p2" 2 5 - 2>&1)" ok
d=$(st maxdiff "$T/p1" "$T/p2")
check "logits do not depend on batching (max diff $d)" le "$d" 1e-4
"$W" predict --weights "$FIX" --batch 4 "${imgs[@]}" >"$T/p3" 2>/dev/null
d=$(st maxdiff "$T/p1" "$T/p3")
check "a partial last batch gives the same logits (max diff $d)" le "$d" 1e-4

# --- checkpoint metadata: class names, input size, normalisation
st meta "$FIX" "$T/ck.safetensors" format=sweepd-checkpoint-1 arch=resnet18 \
    'classes=["ant","bee","cat","dog","eel"]' input_size=48 \
    'mean=[0.485,0.456,0.406]' 'std=[0.229,0.224,0.225]'
"$W" predict --weights "$T/ck.safetensors" "${imgs[@]}" >"$T/p4" 2>/dev/null
is "checkpoint: exits 0" "$?" 0
is "checkpoint: class names from metadata" "$(st check "$T/p4" 5 5 ant,bee,cat,dog,eel 2>&1)" ok
d=$(st maxdiff "$T/p1" "$T/p4")
check "ImageNet mean/std in metadata = the default (max diff $d)" le "$d" 1e-5
st meta "$FIX" "$T/ck2.safetensors" 'classes=["ant","bee","cat","dog","eel"]' input_size=48 \
    'mean=[0.5,0.5,0.5]' 'std=[0.5,0.5,0.5]'
"$W" predict --weights "$T/ck2.safetensors" "${imgs[@]}" >"$T/p5" 2>/dev/null
d=$(st maxdiff "$T/p1" "$T/p5")
check "other mean/std in metadata change the logits (max diff $d)" le 1e-3 "$d"
"$W" predict --weights "$T/ck.safetensors" --input-size 40 "${imgs[0]}" >"$T/p6" 2>/dev/null
is "--input-size overrides the metadata" "$?" 0
st logits "$T/p4" >"$T/l4"
[ "$(st logits "$T/p6" | cut -d' ' -f2-)" != "$(sed -n 1p "$T/l4" | cut -d' ' -f2-)" ] &&
    ok "--input-size 40 gives other logits than 48" || not_ok "--input-size 40 gives other logits than 48"
st meta "$FIX" "$T/ck3.safetensors" 'classes=["a","b"]'
"$W" predict --weights "$T/ck3.safetensors" "${imgs[0]}" >/dev/null 2>"$T/e3"
is "class list of the wrong length: exit 4" "$?" 4
like "... message names the key" "$(cat "$T/e3")" 'classes'

# --- --raw
"$W" predict --weights "$FIX" --raw "$T"/raw/*/*.jpg >"$T/p7" 2>/dev/null
is "--raw with a 48x48 image exits 0" "$?" 0
is "--raw output valid" "$(st check "$T/p7" 5 5 - 2>&1)" ok
"$W" predict --weights "$FIX" --raw "${imgs[0]}" >"$T/p8" 2>/dev/null
is "--raw with a 64x64 image at input 48: exit 3" "$?" 3
like "... error line names both sizes" "$(cat "$T/p8")" '"error":.*64x64.*48'

# --- unreadable images among good ones
echo "not a jpeg" >"$T/bad.jpg"
"$W" predict --weights "$FIX" "${imgs[0]}" "$T/missing.jpg" "$T/bad.jpg" "${imgs[1]}" >"$T/p9" 2>/dev/null
is "unreadable images: exit 3 at the end" "$?" 3
is "... still one line per image" "$(wc -l <"$T/p9")" 4
like "... missing file has an error line" "$(sed -n 2p "$T/p9")" '^\{"file":"[^"]*missing.jpg","error":"[^"]+"\}$'
like "... non-JPEG has an error line" "$(sed -n 3p "$T/p9")" '^\{"file":"[^"]*bad.jpg","error":"[^"]+"\}$'
like "... good images after it are classified" "$(sed -n 4p "$T/p9")" '"top":\['

# --- 1000-class ImageNet-style weights without metadata (input 224 default)
st make "$T/in1k.safetensors" 1000 4
"$W" predict --weights "$T/in1k.safetensors" "${imgs[@]:0:2}" >"$T/p10" 2>"$T/e10"
is "1000-class weights: exit 0" "$?" 0
is "... 1000 logits, top 5, index names" "$(st check "$T/p10" 5 1000 - 2>&1)" ok
"$W" predict --weights "$T/in1k.safetensors" --arch resnet50 "${imgs[0]}" >/dev/null 2>"$T/e11"
is "--arch that does not match the file: exit 4" "$?" 4
like "... message names both" "$(cat "$T/e11")" 'resnet50'

# --- bad weights and arguments
"$W" predict --weights "$T/nothere.safetensors" "${imgs[0]}" >/dev/null 2>"$T/e12"
is "missing weights file: exit 4" "$?" 4
like "... message names the file" "$(cat "$T/e12")" 'nothere.safetensors'
head -c 5000 "$FIX" >"$T/trunc.safetensors"
"$W" predict --weights "$T/trunc.safetensors" "${imgs[0]}" >/dev/null 2>"$T/e13"
is "truncated weights file: exit 4" "$?" 4
like "... message says where" "$(cat "$T/e13")" 'exceeds the file|beyond'
st meta "$FIX" "$T/nofc.safetensors"
"$PY" - "$T/nofc.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
del h["layer3.0.conv2.weight"]
j = json.dumps(h).encode()
j += b" " * (-len(j) % 8)
open(p, "wb").write(struct.pack("<Q", len(j)) + j + b[8 + n:])
PY
"$W" predict --weights "$T/nofc.safetensors" "${imgs[0]}" >/dev/null 2>"$T/e14"
is "a missing tensor: exit 4" "$?" 4
like "... message names the tensor" "$(cat "$T/e14")" 'layer3.0.conv2.weight'
"$W" predict "${imgs[0]}" >/dev/null 2>&1
is "no --weights: exit 2" "$?" 2
"$W" predict --weights "$FIX" >/dev/null 2>&1
is "no image: exit 2" "$?" 2
"$W" predict --weights "$FIX" --top 0 "${imgs[0]}" >/dev/null 2>"$T/err"
is "--top 0: exit 2" "$?" 2
is "--top 0: the one number wording" "$(cat "$T/err")" \
    'sweep-worker predict: --top: expected an integer from 1 to 1048576, got "0"'
"$W" predict --help | grep -q -- '--weights'
is "--help shows the options" "$?" 0

# --- end to end against torchvision: a full-width resnet18 (random weights,
# non-trivial batchnorm statistics) exported by hand, the same JPEGs decoded
# by torchvision.io, the same normalisation. --raw sees identical pixels, so
# the logits must agree to float32 rounding; with resize + crop the two
# resamplers differ slightly (torchvision's tensor antialias vs. the
# Pillow-style filter here), so a looser bound applies.
cat >"$T/tv_ref.py" <<'PY'
import json, struct, sys
import torch, torchvision
from torchvision.io import decode_jpeg, read_file
import torchvision.transforms.functional as TF
out, size = sys.argv[1], int(sys.argv[2])
torch.manual_seed(3)
m = torchvision.models.resnet18(num_classes=10)
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.2, 0.2)
            mod.running_mean.normal_(0, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
m.eval()
header, blobs, off = {}, [], 0
for k, v in m.state_dict().items():
    if k.endswith("num_batches_tracked"):
        continue
    b = v.float().contiguous().numpy().tobytes()
    header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(out, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
for p in sys.argv[3:]:
    im = decode_jpeg(read_file(p)).float() / 255
    r = TF.center_crop(TF.resize(im, int(round(size / 0.875)), antialias=True), size)
    with torch.no_grad():
        print(json.dumps({"file": p, "raw": m(((im - mean) / std)[None])[0].tolist(),
                          "resized": m(((r - mean) / std)[None])[0].tolist()}))
PY
cat >"$T/tv_cmp.py" <<'PY'
import json, sys
ref = [json.loads(l) for l in open(sys.argv[1])]
got = [json.loads(l) for l in open(sys.argv[2])]
key = sys.argv[3]
assert [r["file"] for r in ref] == [g["file"] for g in got]
print(max(abs(a - b) for r, g in zip(ref, got) for a, b in zip(r[key], g["logits"])))
PY
if "$PY" -c 'import torch, torchvision' 2>/dev/null; then
    tvimgs=("${imgs[@]:0:3}")
    "$PY" "$T/tv_ref.py" "$T/r18.safetensors" 64 "${tvimgs[@]}" >"$T/tv_ref" 2>"$T/e_tv"
    is "torchvision reference computed" "$?" 0
    "$W" predict --weights "$T/r18.safetensors" --input-size 64 --raw "${tvimgs[@]}" >"$T/tv_raw" 2>/dev/null
    is "resnet18 --raw: exit 0" "$?" 0
    d=$("$PY" "$T/tv_cmp.py" "$T/tv_ref" "$T/tv_raw" raw)
    check "resnet18 --raw logits = torchvision's on the same pixels (max diff $d)" le "$d" 1e-4
    "$W" predict --weights "$T/r18.safetensors" --input-size 64 "${tvimgs[@]}" >"$T/tv_res" 2>/dev/null
    is "resnet18 resize+crop: exit 0" "$?" 0
    d=$("$PY" "$T/tv_cmp.py" "$T/tv_ref" "$T/tv_res" resized)
    check "resnet18 resize+crop logits near torchvision's Resize+CenterCrop (max diff $d)" le "$d" 0.05
else
    not_ok "torch and torchvision importable by $PY for the end-to-end check (etc/install-deps installs them)"
fi

# --- bench: JSON keys and a real OpenBLAS kernel
out=$("$W" bench --arch resnet18 --width 8 --input-size 32 --batch 4 --steps 1 --classes 10 --threads 2 2>"$T/e15")
is "bench exits 0" "$?" 0
for k in train_images_per_s infer_images_per_s gflops blas_core threads sgemm_gflops_peak peak_rss_mb; do
    like "bench prints $k" "$out" "\"$k\":"
done
like "bench uses the requested 2 threads" "$out" '"threads":2[,}]'
# The kernel policy (--blas-core inherit | auto | NAME). The expected kernels
# come from this CPU's flags: the best is Cooperlake with AVX512_BF16,
# SkylakeX with AVX-512, Haswell with AVX2. Every case sets or removes
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for its own process only, so the suite
# passes whatever the machine's environment presets.
best=$(cpu_best_kernel)
kernel_of() { printf '%s' "$1" | sed -n 's/.*"blas_core":"\([^"]*\)".*/\1/p'; }
BQ=(bench --width 8 --input-size 32 --batch 2 --steps 1 --classes 10)
core=$(kernel_of "$out")
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
    # The environment presets a kernel: the default policy (inherit) keeps it.
    like "inherit: the environment's OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE is respected (got $core)" \
        "$core" "^${OPENBLAS_CORETYPE}\$"
fi
out=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$W" "${BQ[@]}" 2>/dev/null)
core=$(kernel_of "$out")
case "$best" in
    Cooperlake | SkylakeX)
        like "nothing inherited: an AVX-512 kernel on this AVX-512 CPU (got $core)" "$core" \
            '^(SkylakeX|Cooperlake|SapphireRapids)$' ;;
    Haswell)
        like "nothing inherited: not a fallback on this AVX2 CPU (got $core)" "$core" \
            '^(Haswell|Zen|SkylakeX|Cooperlake|SapphireRapids)$' ;;
    *) ok "no AVX2 on this CPU: any OpenBLAS kernel will do ($core)" ;;
esac
like "... the policy is reported as inherit" "$out" '"blas_policy":"inherit"'
if [ -n "$best" ]; then
    out=$(OPENBLAS_CORETYPE=Haswell "$W" "${BQ[@]}" 2>/dev/null)
    is "inherit keeps an inherited Haswell" "$(kernel_of "$out")" Haswell
    out=$(OPENBLAS_CORETYPE=Haswell "$W" "${BQ[@]}" --blas-core inherit 2>/dev/null)
    is "--blas-core inherit keeps it too" "$(kernel_of "$out")" Haswell
    out=$(OPENBLAS_CORETYPE=Haswell "$W" "${BQ[@]}" --blas-core auto 2>"$T/e19")
    is "auto over an inherited Haswell: exit 0" "$?" 0
    is "auto over an inherited Haswell runs $best (from cpuid)" "$(kernel_of "$out")" "$best"
    like "... and reports the policy" "$out" '"blas_policy":"auto"'
    if [ "$best" != Haswell ]; then
        like "... after saying why it restarts" "$(cat "$T/e19")" \
            "blas_core = auto: OpenBLAS runs the Haswell kernel; restarting with OPENBLAS_CORETYPE=$best"
    fi
    out=$(env -u OPENBLAS_CORETYPE "$W" --blas-core=Haswell "${BQ[@]}" 2>/dev/null)
    is "--blas-core=Haswell (before the command) forces Haswell" "$(kernel_of "$out")" Haswell
    # A forced kernel whose products are wrong falls back to the inherited one.
    out=$(OPENBLAS_CORETYPE=Haswell SWEEP_BLAS_BAD_KERNEL="$best" "$W" "${BQ[@]}" \
        --blas-core auto 2>"$T/e20")
    if [ "$best" != Haswell ]; then
        is "wrong products under auto: exit 0" "$?" 0
        is "... falls back to the inherited Haswell" "$(kernel_of "$out")" Haswell
        like "... with a warning naming the bad kernel" "$(cat "$T/e20")" \
            "kernel $best \\(blas_core = auto\\) gives wrong products.*falling back to the inherited kernel"
        like "... and says so in its report" "$out" "\"blas_note\":\"fell back from the $best kernel"
        is "... restarting twice at most" "$(grep -c '; restarting with\|falling back' "$T/e20")" 2
    fi
    # Wrong products from the inherited kernel itself: nothing to fall back to.
    out=$(OPENBLAS_CORETYPE=Haswell SWEEP_BLAS_BAD_KERNEL=Haswell "$W" "${BQ[@]}" 2>"$T/e21")
    is "wrong products from the inherited kernel: still runs (exit 0)" "$?" 0
    is "... on that kernel" "$(kernel_of "$out")" Haswell
    like "... with a warning" "$(cat "$T/e21")" "Haswell gives wrong products.*no other kernel"
fi
if [ "$best" = Haswell ]; then
    out=$(env -u OPENBLAS_CORETYPE "$W" "${BQ[@]}" --blas-core SkylakeX 2>"$T/e22")
    is "a kernel this CPU cannot run is not used" "$(kernel_of "$out")" "$(kernel_of "$(env -u OPENBLAS_CORETYPE "$W" "${BQ[@]}" 2>/dev/null)")"
    like "... with the reason" "$(cat "$T/e22")" "lacks the AVX-512 instructions"
elif [ -n "$best" ]; then
    out=$(OPENBLAS_CORETYPE=Haswell "$W" "${BQ[@]}" --blas-core SkylakeX 2>/dev/null)
    is "--blas-core SkylakeX forces SkylakeX over an inherited Haswell" "$(kernel_of "$out")" SkylakeX
fi
"$W" "${BQ[@]}" --blas-core fast >/dev/null 2>"$T/e23"
is "a bad --blas-core value: exit 2" "$?" 2
like "... message quotes it and lists the choices" "$(cat "$T/e23")" "expected inherit, auto or an OpenBLAS kernel name.*SkylakeX.*got 'fast'"
"$W" "${BQ[@]}" --blas-core >/dev/null 2>"$T/e24"
is "--blas-core without a value: exit 2" "$?" 2
# The re-exec path for a misdetected CPU, forced: SWEEP_BLAS_PRETEND_CORE makes
# the first start see a fallback kernel; with nothing inherited, the worker must
# restart itself with OPENBLAS_CORETYPE set to the kernel the CPU supports, and
# the restarted process reports what it loaded.
out=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE SWEEP_BLAS_PRETEND_CORE=Prescott "$W" \
    "${BQ[@]}" 2>"$T/e17")
is "bench after a forced kernel fallback exits 0" "$?" 0
if [ -n "$best" ]; then
    like "the worker restarts itself with OPENBLAS_CORETYPE=$best" "$(cat "$T/e17")" \
        "runs the Prescott kernel; restarting with OPENBLAS_CORETYPE=$best"
    like "... and the restarted worker runs $best" "$out" "\"blas_core\":\"$best\""
    is "... restarting once only" "$(grep -c '; restarting with' "$T/e17")" 1
else
    unlike "no AVX2: no restart" "$(cat "$T/e17")" "; restarting with"
fi
out=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE SWEEP_BLAS_PRETEND_CORE=Prescott \
    SWEEP_BLAS_REEXEC=1 "$W" "${BQ[@]}" 2>"$T/e18")
is "a restart that did not help: bench still runs (exit 0)" "$?" 0
if [ -n "$best" ]; then
    like "... with a warning naming both kernels" "$(cat "$T/e18")" \
        "still runs the Prescott kernel after restarting with OPENBLAS_CORETYPE=$best"
    unlike "... and no second restart" "$(cat "$T/e18")" "; restarting with"
fi
# With the environment preset, the pretend hook is ignored: inherit respects it.
out=$(OPENBLAS_CORETYPE=Haswell SWEEP_BLAS_PRETEND_CORE=Prescott "$W" "${BQ[@]}" 2>"$T/e25")
unlike "an inherited kernel is never replaced under inherit" "$(cat "$T/e25")" "restarting"
"$W" bench --freeze layer9 >/dev/null 2>"$T/e16"
is "bench with a bad --freeze: exit 2" "$?" 2
like "... message lists the choices" "$(cat "$T/e16")" 'layer4'
done_testing
