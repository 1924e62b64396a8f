#!/bin/bash
# model_families — VGG and Inception v3 through the real worker (issue 18):
# a narrow vgg11_bn and inception_v3 trained from scratch on a tiny coloured
# data set, then fine-tuned from their own best checkpoint at a named freeze
# point with the feature cache, stopped and resumed exactly, and used by
# predict and eval; the arch is inferred from the file's names when not given,
# and another family's freeze point is refused. Inception runs at 75 (its
# smallest input, the auxiliary head skipped) to stay fast.
source "$(dirname "$0")/lib.sh"

W=$BUILD/sweep-worker
MK=$BUILD/tests/train_mkdata
TOOL="/usr/bin/python3 $ROOT/tests/integration/train_tool.py"
export SWEEP_PROGRESS_INTERVAL=0

"$MK" "$T/data" 3 10 16 5 || { not_ok "generate data"; done_testing; }

# spec NAME ARCH WEIGHTS INPUT PARAMS
spec() {
    local w=null a=""
    [ "$3" != null ] && w="\"$3\""
    [ "$2" != - ] && a="\"arch\": \"$2\","
    cat >"$T/$1.json" <<EOF2
{"trial": 1, "job": 1, "seed": 5,
 "data": {"train": "$T/data", "val": null, "val_fraction": 0.25, "test": null},
 "model": {$a "weights": $w, "input_size": $4, "width": 4},
 "params": {$5},
 "objective": {"metric": "val_accuracy", "goal": "maximize"},
 "out_dir": "$T/out/$1", "cache_dir": null, "threads": 1}
EOF2
}
run() {
    "$W" run "$T/$1.json" >"$T/$1.out" 2>"$T/$1.err"
    echo $?
}
get() { $TOOL get "$T/$1.out" "$2" "$3"; }
count() { $TOOL count "$T/$1.out" "$2"; }

for fam in "vgg11_bn 32 block3 classifier.6 features.0" "inception_v3 75 Mixed_6a fc Conv2d_1a_3x3"; do
    set -- $fam
    arch=$1 size=$2 point=$3 head=$4 first=$5
    BASE='"lr": 0.01, "batch_size": 6, "epochs": 3, "freeze": "none", "optimizer": "adam", "dropout": 0.2'
    spec "$arch" "$arch" null "$size" "$BASE"
    is "$arch: scratch trial exit 0" "$(run "$arch")" 0
    is "$arch: start names the arch" "$(get "$arch" start arch)" "\"$arch\""
    is "$arch: three epochs" "$(count "$arch" epoch)" 3
    like "$arch: done has a val accuracy" "$(get "$arch" done val_accuracy)" '^[0-9.]+$'
    WB=$T/out/$arch/best.safetensors
    check "$arch: best checkpoint written" test -s "$WB"
    is "$arch: checkpoint has torchvision names" "$($TOOL shape "$WB" "$head.weight")" \
        "$($TOOL shape "$T/out/$arch/checkpoint.safetensors" "$head.weight")"

    # fine-tune from the checkpoint, arch inferred from the names, frozen prefix cached
    FT='"lr": 0.01, "batch_size": 4, "epochs": 2, "freeze": "'$point'", "optimizer": "sgd"'
    spec "${arch}_ft" - "$WB" "$size" "$FT"
    is "$arch: fine-tune ($point) exit 0" "$(run "${arch}_ft")" 0
    is "$arch: arch inferred from the file" "$(get "${arch}_ft" start arch)" "\"$arch\""
    is "$arch: feature cache used" "$(get "${arch}_ft" start feature_cache)" '"train+val"'
    is "$arch: frozen prefix unchanged" \
        "$($TOOL stcmp "$WB" "$T/out/${arch}_ft/best.safetensors" "$first." | sed 's/same [0-9]*/same N/')" \
        "same N differ 0 missing 0"
    like "$arch: the head trained" "$($TOOL stcmp "$WB" "$T/out/${arch}_ft/best.safetensors" "$head.")" \
        'differ [1-9]'

    # stop and resume: the same final weights
    cp "$T/${arch}_ft.json" "$T/${arch}_stop.json"
    sed -i "s|out/${arch}_ft|out/${arch}_stop|" "$T/${arch}_stop.json"
    is "$arch: stopped at step 3: exit 7" "$(SWEEP_TEST_SIGNAL_AT_STEP=3 run "${arch}_stop")" 7
    is "$arch: resumed: exit 0" "$(run "${arch}_stop")" 0
    is "$arch: resume gives the same weights" \
        "$($TOOL stcmp "$T/out/${arch}_ft/checkpoint.safetensors" "$T/out/${arch}_stop/checkpoint.safetensors" "" | sed 's/same [0-9]*/same N/')" \
        "same N differ 0 missing 0"

    # another family's freeze point is refused, naming this family's points
    spec "${arch}_bad" "$arch" null "$size" '"freeze": "layer3", "epochs": 1'
    like "$arch: layer3 refused" "$(run "${arch}_bad")" '^[1-9]'
    like "$arch: the message lists the family's points" "$(cat "$T/${arch}_bad.out" "$T/${arch}_bad.err")" \
        'is not a freeze point'

    # predict and eval with the checkpoint
    img=$(find "$T/data" -name '*.jpg' | head -1)
    like "$arch: predict" "$("$W" predict --weights "$WB" "$img" 2>&1)" 'class'
    "$W" eval --weights "$WB" --data "$T/data" >"$T/${arch}_eval.out" 2>"$T/${arch}_eval.err"
    is "$arch: eval exit 0" "$?" 0
    like "$arch: eval reports accuracy" "$(cat "$T/${arch}_eval.out")" 'accuracy'
done
done_testing
