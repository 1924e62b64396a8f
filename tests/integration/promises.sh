#!/bin/bash
# The smaller promises of issue 20, end to end with the real daemon and
# worker on a tiny generated data set: job paths are stored normalised (no
# "/jobs/../data"), a data folder's non-JPEG files and undecodable JPEGs are
# counted in `sweepctl trial` and `status`, a diverged trial's error says
# "diverged" once, a misspelt key gets the nearest known one, import-idx
# creates missing parent folders, and export-weights.py refuses a ResNeXt
# (grouped convolutions the worker cannot run) while a wide ResNet, which it
# can, is exported and loads.
. "$(dirname "$0")/lib.sh"

MK=$BUILD/tests/train_mkdata
S=$T/state
SOCK=$S/sweepd.sock
ctl() { "$BUILD/sweepctl" --socket "$SOCK" "$@"; }

"$MK" "$T/data" 2 8 16 5 || { not_ok "generate data"; done_testing; }
echo "not an image" >"$T/data/class0/notes.txt"   # skipped: not a JPEG
printf '\xff\xd8\xff\xe0garbage' >"$T/data/class1/broken.jpg" # a JPEG that does not decode
mkdir -p "$T/jobs" "$S"

"$BUILD/sweepd" --foreground --state-dir "$S" --socket "$SOCK" --db "$S/sweepd.db" --workers 2 \
    --threads-per-worker 1 >"$S/log" 2>&1 &
D=$!
at_exit "kill $D 2>/dev/null; wait $D 2>/dev/null"
wait_for 20 ctl ping >/dev/null 2>&1

job() { # job NAME LR [EXTRA_FIXED]
    cat <<EOF
{"name": "$1", "data": {"train": "$T/jobs/./../data", "val_fraction": 0.25},
 "model": {"arch": "resnet18", "weights": null, "width": 8, "input_size": 16},
 "strategy": "grid", "space": {"lr": [$2]},
 "fixed": {"epochs": 1, "batch_size": 4 ${3:-}}, "max_retries": 0, "seed": 3}
EOF
}
job counts 0.02 >"$T/jobs/counts.json"
out=$(ctl submit "$T/jobs/counts.json"); rc=$?
is "submit exits 0" "$rc" 0
is "data.train is stored normalised" \
    "$(sqlite3 "$S/sweepd.db" "SELECT json_extract(spec_json, '$.data.train') FROM jobs WHERE id = 1")" "$T/data"
ctl watch 1 >/dev/null
is "job 1 done" "$(sqlite3 "$S/sweepd.db" "SELECT state FROM jobs WHERE id = 1")" done
is "the trial's data counts are stored" \
    "$(sqlite3 "$S/sweepd.db" "SELECT skipped_files || '/' || bad_images FROM trials WHERE job_id = 1")" "1/1"
tr=$(ctl trial 1)
like "trial: skipped files" "$tr" '^skipped_files +1$'
like "trial: undecodable images" "$tr" '^bad_images +1$'
like "status JOB: the counts in the trials table" "$(ctl status 1 | grep -A2 '^trial ')" \
    'skipped_files +bad_images'

# A symlinked folder followed by "..": the ".." leaves the link's target.
mkdir -p "$T/deep/inner"
ln -s "$T/deep/inner" "$T/link"
cp -r "$T/data" "$T/deep/data2"
sed -e "s|$T/jobs/./../data|$T/link/../data2|" -e 's/"counts"/"linked"/' "$T/jobs/counts.json" >"$T/jobs/linked.json"
ctl submit "$T/jobs/linked.json" >/dev/null
is "a '..' after a symlink resolves as the kernel does" \
    "$(sqlite3 "$S/sweepd.db" "SELECT json_extract(spec_json, '$.data.train') FROM jobs WHERE id = 2")" "$T/deep/data2"
ctl cancel 2 >/dev/null

# One message per cause: a diverged trial.
job diverge 1e9 >"$T/jobs/diverge.json"
ctl submit "$T/jobs/diverge.json" >/dev/null
ctl watch 3 >/dev/null
err=$(sqlite3 "$S/sweepd.db" "SELECT exit_code || ' ' || error FROM trials WHERE job_id = 3")
like "diverged: the error names the loss once" "$err" \
    '^5 diverged: (training loss is (NaN|infinite) at epoch 1 step [0-9]+ \(lr 1e\+09\)|validation loss is (NaN|infinite) after epoch 1)$'
is "'diverged' appears once" "$(grep -o diverged <<<"$err" | wc -l)" 1

# A misspelt key: the nearest known one.
job typo 0.02 ', "epoch": 2' >"$T/jobs/typo.json"
out=$(ctl submit "$T/jobs/typo.json" 2>&1); rc=$?
is "a misspelt key is refused" "$rc" 1
like "and the nearest known key is suggested" "$out" 'fixed\.epoch: unknown key; did you mean epochs\?'
ctl shutdown >/dev/null
wait $D

# import-idx into a folder whose parents do not exist yet.
FM=/usr/share/datasets/fashion-mnist
if [ -f "$FM/t10k-images-idx3-ubyte.gz" ]; then
    "$BUILD/sweep-worker" import-idx "$FM/t10k-images-idx3-ubyte.gz" "$FM/t10k-labels-idx1-ubyte.gz" \
        "$T/new/a/b" --classes 0,1 --limit 2 >/dev/null 2>"$T/import.err"
    is "import-idx into missing parents exits 0" "$?" 0
    is "and writes the images there" "$(find "$T/new/a/b" -name '*.jpg' | wc -l)" 4
else
    ok "# skip import-idx: no Fashion-MNIST"
    ok "# skip import-idx: no Fashion-MNIST"
fi

# export-weights.py: what the worker cannot load is refused.
PY=/usr/bin/python3
if $PY -c 'import torch, torchvision' 2>/dev/null; then
    $PY - "$T" <<'EOF'
import sys, torch, torchvision
from torchvision.models.resnet import ResNet, Bottleneck
t = sys.argv[1]
torch.save(torchvision.models.resnext50_32x4d(weights=None).state_dict(), t + "/resnext.pth")
torch.manual_seed(0)
wide = ResNet(Bottleneck, [1, 1, 1, 1], num_classes=3, width_per_group=128)
torch.save(wide.state_dict(), t + "/wide.pth")
EOF
    $PY "$ROOT/etc/export-weights.py" "$T/resnext.pth" "$T/resnext.safetensors" 2>"$T/rx.err"
    is "ResNeXt-50 32x4d: refused (exit 1)" "$?" 1
    like "it says why" "$(cat "$T/rx.err")" \
        'layer1\.0\.conv2\.weight takes 4 input channels but the layer before gives 128: a grouped convolution \(groups=32, width_per_group=4, as in ResNeXt\)'
    check "nothing is written" test ! -e "$T/resnext.safetensors"
    $PY "$ROOT/etc/export-weights.py" "$T/wide.pth" "$T/wide.safetensors" --input-size 32 >/dev/null 2>&1
    is "a wide ResNet (no groups) is exported" "$?" 0
    img=$(find "$T/data/class0" -name '*.jpg' | head -1)
    like "and the worker loads it" "$("$BUILD/sweep-worker" predict --weights "$T/wide.safetensors" "$img" 2>&1)" \
        '^\{"file":.*"top":\['
else
    for _ in 1 2 3 4 5; do ok "# skip export-weights: no torch/torchvision"; done
fi
done_testing
