#!/usr/bin/env python3
"""A scripted stand-in for sweep-worker used by the fault tests (fault_*.sh).

It follows the real worker's contract where the daemon can see it:
  run TRIAL.json   events on stdout (start, epoch, checkpoint, done), one
                   checkpoint per epoch in out_dir, best.safetensors, resume
                   from out_dir/checkpoint.json after a crash without
                   re-running finished epochs (the real worker does the same
                   from checkpoint.safetensors and, like it, does not repeat
                   the "epoch" events of the epochs it resumes past),
                   SIGTERM -> checkpoint, "stopped" event, exit 7.
  eval --weights W --data D   one JSON object (loss, accuracy, ...).
Timing and observation, through the environment the daemon passes on:
  REL_EPOCH_SECONDS  seconds per epoch (default 0.05)
  REL_EVAL_SECONDS   seconds an evaluation takes (default 0)
  REL_MARKS          directory: files named "<trial>.epoch<E>" (epoch E
                     started), "<trial>.done", "eval.start" appear as it runs
  REL_LEDGER         file: one line per event ("<trial> start <resumed-at>",
                     "<trial> epoch <E>", "<trial> done", "eval")
"""
import json
import os
import signal
import sys
import time

stop = False


def on_term(sig, frame):
    global stop
    stop = True


def now(t0):
    return round(time.monotonic() - t0, 4)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def ledger(line):
    path = os.environ.get("REL_LEDGER")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def mark(name):
    d = os.environ.get("REL_MARKS")
    if d:
        with open(os.path.join(d, name), "w") as f:
            f.write("%d\n" % os.getpid())


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def tiny_safetensors(meta):
    hdr = json.dumps({"fc.bias": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                      "__metadata__": meta}).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    return len(hdr).to_bytes(8, "little") + hdr + b"\x00\x00\x80\x3f"


def sleep_or_stop(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if stop:
            return False
        time.sleep(min(0.01, max(0.0, end - time.monotonic())))
    return not stop


def run(spec_path):
    t0 = time.monotonic()
    with open(spec_path) as f:
        spec = json.load(f)
    trial = spec.get("trial", 0)
    out = spec["out_dir"]
    params = spec.get("params", {})
    epochs = int(params.get("epochs", 1))
    lr = float(params.get("lr", 0.01))
    per_epoch = float(os.environ.get("REL_EPOCH_SECONDS", "0.05"))
    ckpt = os.path.join(out, "checkpoint.json")
    state = {"epoch": 0, "metrics": [], "best_epoch": 0}
    if os.path.exists(ckpt):
        with open(ckpt) as f:
            state = json.load(f)
    resumed = state["epoch"]
    ledger("%s start %d" % (trial, resumed))
    emit({"event": "start", "t": now(t0), "trial": trial, "params": params, "train_images": 6,
          "val_images": 6, "classes": 2,
          "resumed": {"epoch": resumed, "step": 0} if resumed else None})

    def save():
        write_atomic(ckpt, json.dumps(state).encode())
        emit({"event": "checkpoint", "t": now(t0), "epoch": state["epoch"],
              "path": os.path.join(out, "checkpoint.safetensors")})

    for e in range(resumed + 1, epochs + 1):
        mark("%s.epoch%d" % (trial, e))
        if not sleep_or_stop(per_epoch):
            save()
            emit({"event": "stopped", "t": now(t0), "epoch": state["epoch"]})
            sys.exit(7)
        acc = round(0.5 + 0.4 * (1 - 1 / (1 + 10 * lr * e)), 6)
        rec = {"epoch": e, "train_loss": round(1.0 / e, 6), "train_accuracy": acc,
               "val_loss": round(1.1 / e, 6), "val_accuracy": acc, "val_precision": acc,
               "val_recall": acc, "val_f1": acc, "lr": lr, "seconds": per_epoch}
        emit(dict({"event": "epoch", "t": now(t0)}, **rec))
        ledger("%s epoch %d" % (trial, e))
        state["epoch"] = e
        state["metrics"].append(rec)
        if state["best_epoch"] == 0 or acc > state["metrics"][state["best_epoch"] - 1]["val_accuracy"]:
            state["best_epoch"] = e
            write_atomic(os.path.join(out, "best.safetensors"),
                         tiny_safetensors({"format": "fake", "epoch": str(e)}))
        save()
    best = state["metrics"][state["best_epoch"] - 1] if state["best_epoch"] else {}
    emit(dict({"event": "done", "t": now(t0), "best_epoch": state["best_epoch"]},
              **{k: v for k, v in best.items() if k.startswith("val_")}))
    ledger("%s done" % trial)
    mark("%s.done" % trial)
    return 0


def evaluate(argv):
    weights = argv[argv.index("--weights") + 1]
    with open(weights, "rb") as f:
        if len(f.read(16)) < 8:
            emit({"event": "error", "code": "model", "message": "bad weights " + weights})
            return 4
    mark("eval.start")
    if not sleep_or_stop(float(os.environ.get("REL_EVAL_SECONDS", "0"))):
        return 7
    ledger("eval")
    emit({"loss": 0.4, "accuracy": 0.8125, "precision": 0.8, "recall": 0.8, "f1": 0.8})
    return 0


def main():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        return run(sys.argv[2])
    if len(sys.argv) >= 2 and sys.argv[1] == "eval":
        return evaluate(sys.argv)
    sys.stderr.write("reliability_worker: usage: run TRIAL.json | eval --weights W --data D\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
