#!/bin/bash
# bench_engine — the compute engine against PyTorch 1.13 on this machine, in
# one run: `sweep-worker bench` and tests/bench/torch_bench.py do the same
# steps (resnet18 and resnet50 from scratch, random data, SGD-momentum training
# steps and evaluation-mode inference) for input 224 batch 16, input 32 batch
# 128 and input 64 batch 64. The engine runs once per OpenBLAS kernel policy
# (BENCH_BLAS, default "inherit auto": the kernel the environment gives, then
# the best one for this CPU); each row names the kernel it ran. PyTorch's
# oneDNN picks its own kernels whatever OPENBLAS_CORETYPE says,
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
# BENCH_ARCHS ("resnet18 resnet50"), BENCH_EXTRA (other families, each
# ARCH:SIZE:BATCH at its own size: "vgg16_bn:224:8 inception_v3:299:8"; issue 18),
# BENCH_BLAS ("inherit auto"),
# BENCH_REPEAT (2), BENCH_JSON=FILE to also append every raw JSON result to FILE.
set -u
ROOT=${SWEEP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${SWEEP_BUILD:-$ROOT/build}
WORKER=$BUILD/sweep-worker
PY=/usr/bin/python3
THREADS=${BENCH_THREADS:-2}
CONFIGS=${BENCH_CONFIGS:-"224:16 32:128 64:64"}
REPEAT=${BENCH_REPEAT:-2}
ARCHS=${BENCH_ARCHS-"resnet18 resnet50"} # empty: only BENCH_EXTRA
POLICIES=${BENCH_BLAS:-"inherit auto"}
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
# One row: engine (each BLAS policy) and PyTorch, BENCH_REPEAT times, alternating.
bench_one() {
    local arch=$1 size=$2 batch=$3 steps
    if [ "$size" -ge 128 ]; then steps=${BENCH_STEPS_224:-5}; else steps=${BENCH_STEPS_32:-10}; fi
    local args=(--arch "$arch" --input-size "$size" --batch "$batch" --threads "$THREADS"
                --steps "$steps" --classes 1000)
    for ((rep = 1; rep <= REPEAT; rep++)); do
        for pol in $POLICIES; do
            echo "bench_engine: [$rep/$REPEAT] sweep-worker bench ${args[*]} --blas-core $pol" >&2
            if line=$("$WORKER" bench "${args[@]}" --blas-core "$pol"); then
                echo "engine:$pol $arch $size $batch $line" >>"$OUT"
            else
                echo "bench_engine: sweep-worker bench failed for $arch $size:$batch ($pol)" >&2
                status=1
            fi
        done
        if [ $have_torch = 1 ]; then
            echo "bench_engine: [$rep/$REPEAT] torch_bench.py ${args[*]}" >&2
            if line=$("$PY" "$ROOT/tests/bench/torch_bench.py" "${args[@]}"); then
                echo "torch $arch $size $batch $line" >>"$OUT"
            else
                echo "bench_engine: torch_bench.py failed for $arch $size:$batch" >&2
                status=1
            fi
        fi
    done
}
for arch in $ARCHS; do
    for cfg in $CONFIGS; do
        bench_one "$arch" "${cfg%%:*}" "${cfg##*:}"
    done
done
for spec in ${BENCH_EXTRA-vgg16_bn:224:8 inception_v3:299:8}; do
    IFS=: read -r arch size batch <<<"$spec"
    bench_one "$arch" "$size" "$batch"
done
[ -n "${BENCH_JSON:-}" ] && cat "$OUT" >>"$BENCH_JSON"

"$PY" - "$OUT" "$THREADS" "$REPEAT" "${OPENBLAS_CORETYPE:-}" <<'PYEOF'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    who, arch, size, batch, js = line.split(" ", 4)
    new = json.loads(js)
    best = rows.setdefault((arch, int(size), int(batch)), {}).setdefault(who, new)
    for k, v in new.items():  # best of the repeats, each figure on its own
        if k in ("train_images_per_s", "infer_images_per_s", "gflops", "infer_gflops",
                 "sgemm_gflops_peak"):
            best[k] = max(best[k], v)
        elif k == "peak_rss_mb":
            best[k] = min(best[k], v)

def ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"

print("%s threads, same run, best of %s each (engine = sweep-worker bench with --blas-core POLICY, "
      "torch = PyTorch peer); environment OPENBLAS_CORETYPE=%s"
      % (sys.argv[2], sys.argv[3], sys.argv[4] or "(unset)"))
hdr = ("model", "input", "batch", "engine kernel (policy)", "train e/t img/s", "ratio",
       "infer e/t img/s", "ratio", "train GFLOPS e/t (of sgemm peak)", "peak RSS e/t MB")
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
def order(k):
    return (k[0], -k[1], k[2])
for key in sorted(rows, key=order):
    arch, size, batch = key
    r = rows[key]
    t = r.get("torch", {})
    def g(d, k):
        return d.get(k, 0.0)
    def eff(d):
        if not d:
            return "-"
        return "%.0f (%.0f%% of %.0f)" % (g(d, "gflops"), 100 * g(d, "gflops") / max(g(d, "sgemm_gflops_peak"), 1e-9), g(d, "sgemm_gflops_peak"))
    for who in sorted(w for w in r if w.startswith("engine:")):
        e = r[who]
        print("| %s | %d | %d | %s (%s) | %.1f / %s | %s | %.1f / %s | %s | %s / %s | %.0f / %s |" % (
            arch, size, batch, e.get("blas_core", "?"), who.split(":", 1)[1],
            g(e, "train_images_per_s"), "%.1f" % g(t, "train_images_per_s") if t else "-",
            ratio(g(e, "train_images_per_s"), g(t, "train_images_per_s")),
            g(e, "infer_images_per_s"), "%.1f" % g(t, "infer_images_per_s") if t else "-",
            ratio(g(e, "infer_images_per_s"), g(t, "infer_images_per_s")),
            eff(e), eff(t),
            g(e, "peak_rss_mb"), "%.0f" % g(t, "peak_rss_mb") if t else "-"))
PYEOF
exit $status
