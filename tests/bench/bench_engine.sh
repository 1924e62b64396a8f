#!/bin/bash
# bench_engine — the compute engine against PyTorch 1.13 on this machine, in
# one run: `sweep-worker bench` and tests/bench/torch_bench.py do the same
# steps (resnet18 from scratch, random data, SGD-momentum training steps and
# evaluation-mode inference) for input 224 batch 16, input 32 batch 128 and
# input 64 batch 64,
# with the same thread count, and a table shows images/s for training and
# inference, the engine/PyTorch ratios, the GFLOPS reached in training against
# the sgemm peak each side measured in the same run, and peak memory.
# Figures are noisy on a shared machine: compare the ratios, not the absolutes.
# Each side runs BENCH_REPEAT times, alternating engine and PyTorch, and the
# table keeps each side's best figures (highest rates, lowest memory), so a
# burst of load from elsewhere hurts neither side more than the other.
#
# Environment: SWEEP_BUILD (binaries, default build/), BENCH_THREADS (2),
# BENCH_STEPS_224 (5), BENCH_STEPS_32 (10, also for 64), BENCH_CONFIGS
# ("224:16 32:128 64:64"; the issue's targets are the first two, 64:64 is the
# shape of the whole-trial bench tests/bench/bench_trial.sh),
# BENCH_REPEAT (2), BENCH_JSON=FILE to also append every raw JSON result to FILE.
set -u
ROOT=${SWEEP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${SWEEP_BUILD:-$ROOT/build}
WORKER=$BUILD/sweep-worker
PY=/usr/bin/python3
THREADS=${BENCH_THREADS:-2}
CONFIGS=${BENCH_CONFIGS:-"224:16 32:128 64:64"}
REPEAT=${BENCH_REPEAT:-2}
OUT=$(mktemp "${TMPDIR:-/tmp}/bench_engine.XXXXXX")
trap 'rm -f "$OUT"' EXIT

if [ ! -x "$WORKER" ]; then
    echo "bench_engine: $WORKER not built (run make)" >&2
    exit 1
fi
have_torch=1
if ! "$PY" -c 'import torch, torchvision' 2>/dev/null; then
    have_torch=0
    echo "bench_engine: PyTorch not importable by $PY; engine figures only" >&2
fi

status=0
for cfg in $CONFIGS; do
    size=${cfg%%:*}
    batch=${cfg##*:}
    if [ "$size" -ge 128 ]; then steps=${BENCH_STEPS_224:-5}; else steps=${BENCH_STEPS_32:-10}; fi
    args=(--arch resnet18 --input-size "$size" --batch "$batch" --threads "$THREADS"
          --steps "$steps" --classes 1000)
    for ((rep = 1; rep <= REPEAT; rep++)); do
        echo "bench_engine: [$rep/$REPEAT] sweep-worker bench ${args[*]}" >&2
        if line=$("$WORKER" bench "${args[@]}"); then
            echo "engine $size $batch $line" >>"$OUT"
        else
            echo "bench_engine: sweep-worker bench failed for $cfg" >&2
            status=1
        fi
        if [ $have_torch = 1 ]; then
            echo "bench_engine: [$rep/$REPEAT] torch_bench.py ${args[*]}" >&2
            if line=$("$PY" "$ROOT/tests/bench/torch_bench.py" "${args[@]}"); then
                echo "torch $size $batch $line" >>"$OUT"
            else
                echo "bench_engine: torch_bench.py failed for $cfg" >&2
                status=1
            fi
        fi
    done
done
[ -n "${BENCH_JSON:-}" ] && cat "$OUT" >>"$BENCH_JSON"

"$PY" - "$OUT" "$THREADS" "$REPEAT" <<'PYEOF'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    who, size, batch, js = line.split(" ", 3)
    new = json.loads(js)
    best = rows.setdefault((int(size), int(batch)), {}).setdefault(who, new)
    for k, v in new.items():  # best of the repeats, each figure on its own
        if k in ("train_images_per_s", "infer_images_per_s", "gflops", "infer_gflops",
                 "sgemm_gflops_peak"):
            best[k] = max(best[k], v)
        elif k == "peak_rss_mb":
            best[k] = min(best[k], v)

def ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"

print("resnet18, %s threads, same run, best of %s each (engine = sweep-worker bench, torch = PyTorch peer)" % (sys.argv[2], sys.argv[3]))
hdr = ("input", "batch", "train e/t img/s", "ratio", "infer e/t img/s", "ratio",
       "train GFLOPS e/t (of sgemm peak)", "peak RSS e/t MB")
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for (size, batch), r in sorted(rows.items(), reverse=True):
    e, t = r.get("engine", {}), r.get("torch", {})
    def g(d, k):
        return d.get(k, 0.0)
    def eff(d):
        if not d:
            return "-"
        return "%.0f (%.0f%% of %.0f)" % (g(d, "gflops"), 100 * g(d, "gflops") / max(g(d, "sgemm_gflops_peak"), 1e-9), g(d, "sgemm_gflops_peak"))
    print("| %d | %d | %.1f / %s | %s | %.1f / %s | %s | %s / %s | %.0f / %s |" % (
        size, batch,
        g(e, "train_images_per_s"), "%.1f" % g(t, "train_images_per_s") if t else "-",
        ratio(g(e, "train_images_per_s"), g(t, "train_images_per_s")),
        g(e, "infer_images_per_s"), "%.1f" % g(t, "infer_images_per_s") if t else "-",
        ratio(g(e, "infer_images_per_s"), g(t, "infer_images_per_s")),
        eff(e), eff(t),
        g(e, "peak_rss_mb"), "%.0f" % g(t, "peak_rss_mb") if t else "-"))
kern = {r["engine"]["blas_core"] for r in rows.values() if "engine" in r}
print("engine OpenBLAS kernel: %s" % ", ".join(sorted(kern)))
PYEOF
exit $status
