#!/bin/bash
# etc/export-weights.py: torchvision ResNets (random weights, nothing
# downloaded) saved as .pth in the forms people have them — a state dict, a
# training checkpoint with a "module." prefix, a whole pickled model — are
# exported to safetensors; the header is checked byte by byte with the
# standard library, and `sweep-worker predict` must load the file and give the
# same logits as PyTorch on the same images. Needs python3-torch and
# python3-torchvision (see README "Decisions").
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
EXPORT=$ROOT/etc/export-weights.py
W=$BUILD/sweep-worker
FM=/usr/share/datasets/fashion-mnist

cd "$T" || exit 1
# Two real 28x28 images (grey JPEGs) to run both implementations on.
"$W" import-idx "$FM/t10k-images-idx3-ubyte.gz" "$FM/t10k-labels-idx1-ubyte.gz" img \
    --classes 0,1 --limit 1 >/dev/null 2>&1
check "test images imported" test "$(ls img/*/*.jpg | wc -l)" -eq 2

cat >make_models.py <<'EOF'
import torch, torchvision
from torchvision.models.resnet import ResNet, Bottleneck
torch.manual_seed(0)

def randomise_bn(m):
    # Non-trivial running statistics, so swapped mean/var would show.
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.1, 0.1)
    return m

r18 = randomise_bn(torchvision.models.resnet18(weights=None, num_classes=10)).eval()
torch.save(r18.state_dict(), "r18.pth")
torch.save({"epoch": 3, "optimizer": {"lr": 0.1},
            "state_dict": {"module." + k: v for k, v in r18.state_dict().items()}}, "r18_ckpt.pth")
torch.save(r18, "r18_full.pth")
bott = randomise_bn(ResNet(Bottleneck, [1, 1, 1, 1], num_classes=3)).eval()
torch.save(bott.state_dict(), "bott.pth")
torch.save(torch.nn.Linear(4, 2).state_dict(), "linear.pth")
torch.save({"r18": r18, "bott": bott}, "models.pt")
EOF
check "torchvision models created and saved" $PY make_models.py

out=$($PY "$EXPORT" r18.pth r18.safetensors --input-size 28 2>&1); rc=$?
is "state dict exports" "$rc" 0
like "export reports what it wrote" "$out" 'resnet18 \(basic blocks 2-2-2-2, stem width 64\), 102 tensors, 11\.2M parameters, 10 classes, input 28'
out=$($PY "$EXPORT" r18_ckpt.pth r18_ckpt.safetensors --input-size 28 2>&1); rc=$?
is "checkpoint with module. prefix exports" "$rc" 0
out=$($PY "$EXPORT" r18_full.pth full.safetensors 2>&1); rc=$?
is "whole pickled model refused without --allow-pickle" "$rc" 1
like "refusal says how to proceed" "$out" 'pass --allow-pickle'
out=$($PY "$EXPORT" --allow-pickle r18_full.pth full.safetensors --input-size 28 2>&1); rc=$?
is "whole pickled model exports with --allow-pickle" "$rc" 0
printf 'c%d\n' 0 1 2 >bott_classes.txt
out=$($PY "$EXPORT" bott.pth bott.safetensors --input-size 28 --classes bott_classes.txt 2>&1); rc=$?
is "bottleneck ResNet exports" "$rc" 0
like "bottleneck arch named from block counts" "$out" 'resnet-bottleneck-1-1-1-1'
out=$($PY "$EXPORT" linear.pth lin.safetensors 2>&1); rc=$?
is "a non-ResNet is refused" "$rc" 1
like "refusal names the missing tensor" "$out" 'no conv1\.weight'
check "nothing written for a refused input" test ! -e lin.safetensors
out=$($PY "$EXPORT" nonexistent.pth x.safetensors 2>&1); rc=$?
is "missing input exits 1" "$rc" 1
$PY "$EXPORT" only-one-arg.pth >/dev/null 2>&1; is "usage error exits 2" $? 2
out=$($PY "$EXPORT" bott.pth b2.safetensors --classes r18.pth 2>&1)
is "wrong class count refused" "$?" 1

# The file format, read with nothing but the standard library.
cat >check_header.py <<'EOF'
import json, struct, sys
path = sys.argv[1]
with open(path, "rb") as f:
    raw = f.read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
meta = h.pop("__metadata__")
end = 0
for name, t in sorted(h.items(), key=lambda kv: kv[1]["data_offsets"][0]):
    assert t["dtype"] == "F32", name
    b, e = t["data_offsets"]
    assert b == end, (name, b, end)
    count = 1
    for d in t["shape"]:
        count *= d
    assert e - b == 4 * count, name
    end = e
assert 8 + n + end == len(raw), (8 + n + end, len(raw))
assert not any("num_batches_tracked" in k for k in h)
assert all(isinstance(v, str) for v in meta.values())
print(meta["arch"], meta["input_size"], len(h), json.loads(meta["mean"])[0],
      meta.get("classes", "-"))
EOF
is "r18 header: F32 tensors, contiguous offsets, metadata" "$($PY check_header.py r18.safetensors)" \
    "resnet18 28 102 0.485 -"
is "bottleneck header and classes" "$($PY check_header.py bott.safetensors)" \
    'resnet-bottleneck-1-1-1-1 28 87 0.485 ["c0", "c1", "c2"]'
data_hash() { $PY -c 'import hashlib,struct,sys
raw=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",raw[:8])[0]
print(hashlib.sha256(raw[8+n:]).hexdigest())' "$1"; }
is "prefix-stripped checkpoint gives the same tensor data" "$(data_hash r18_ckpt.safetensors)" "$(data_hash r18.safetensors)"
is "pickled model gives the same tensor data" "$(data_hash full.safetensors)" "$(data_hash r18.safetensors)"

# sweep-worker predict on the exported files vs PyTorch on the same pixels.
cat >compare.py <<'EOF'
# compare.py MODELS.pt KEY:PREDICTIONS.jsonl ... -> one line per pair:
# "<images> match" or "<images> differ by <worst relative error>".
import json, sys, torch
from torchvision.io import read_image, ImageReadMode
models = torch.load(sys.argv[1])
mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
for arg in sys.argv[2:]:
    key, pred_file = arg.split(":", 1)
    m = models[key].eval()
    worst, n = 0.0, 0
    for line in open(pred_file):
        p = json.loads(line)
        x = read_image(p["file"], ImageReadMode.RGB).float() / 255.0
        x = ((x - mean) / std).unsqueeze(0)
        with torch.no_grad():
            ref = m(x)[0]
        got = torch.tensor(p["logits"])
        if got.shape != ref.shape:
            worst = float("inf")
        else:
            worst = max(worst, float(((got - ref).abs() / (1 + ref.abs())).max()))
        n += 1
    print("%d %s" % (n, "match" if worst < 2e-3 else "differ by %g" % worst))
EOF
for f in r18 r18_ckpt full bott; do
    "$W" predict --weights $f.safetensors --raw --threads 1 img/*/*.jpg >pred_$f.jsonl 2>pred_$f.err
    is "predict loads $f.safetensors" "$?" 0
done
cmp_out=$($PY compare.py models.pt r18:pred_r18.jsonl r18:pred_r18_ckpt.jsonl r18:pred_full.jsonl \
    bott:pred_bott.jsonl 2>&1)
is "logits of the exported state dict match PyTorch" "$(sed -n 1p <<<"$cmp_out")" "2 match"
is "logits of the exported checkpoint match PyTorch" "$(sed -n 2p <<<"$cmp_out")" "2 match"
is "logits of the exported pickled model match PyTorch" "$(sed -n 3p <<<"$cmp_out")" "2 match"
is "bottleneck logits match PyTorch" "$(sed -n 4p <<<"$cmp_out")" "2 match"
like "predict names classes from --classes" "$(head -n1 pred_bott.jsonl)" '"class":"c[012]"'

done_testing
