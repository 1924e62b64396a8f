#!/usr/bin/python3
"""Helpers for tests/integration/worker_run.sh (standard library only).

  train_tool.py norm EVENTS [PATH=NAME ...]
      prints the event lines with the timing fields (t, seconds, images_per_s)
      removed and each PATH replaced by NAME, keys sorted: two runs of the same
      spec must print the same text.
  train_tool.py get EVENTS EVENT KEY
      prints KEY of the last EVENT line as JSON (nothing when absent).
  train_tool.py count EVENTS EVENT
      prints how many EVENT lines there are.
  train_tool.py stcmp A.safetensors B.safetensors PREFIX...
      compares the raw bytes of every tensor of A whose name starts with one of
      the PREFIXes against B's tensor of the same name; prints
      "same N differ M missing K".
  train_tool.py shape FILE TENSOR
      prints the tensor's shape as JSON.
  train_tool.py check-eval JSON
      checks the shape of `sweep-worker eval` output; prints "ok" or the problem.
"""
import json
import struct
import sys

TIMING = ("t", "seconds", "images_per_s")


def events(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def scrub(v, repl):
    if isinstance(v, dict):
        return {k: scrub(x, repl) for k, x in v.items() if k not in TIMING}
    if isinstance(v, list):
        return [scrub(x, repl) for x in v]
    if isinstance(v, str):
        for a, b in repl:
            v = v.replace(a, b)
    return v


def read_st(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    tensors = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, e2 = e["data_offsets"]
        tensors[name] = (e["shape"], data[base + b:base + e2])
    return tensors, header.get("__metadata__", {})


def check_eval(o):
    for k in ("loss", "accuracy", "precision", "recall", "f1"):
        if not isinstance(o.get(k), (int, float)):
            return "missing number " + k
    cm, classes, per = o.get("confusion_matrix"), o.get("classes"), o.get("per_class")
    if not (isinstance(cm, list) and isinstance(classes, list) and isinstance(per, list)):
        return "missing confusion_matrix/classes/per_class"
    k = len(classes)
    if len(cm) != k or any(len(r) != k for r in cm) or len(per) != k:
        return "sizes disagree"
    total = sum(map(sum, cm))
    if total != o.get("images") or sum(p["support"] for p in per) != total:
        return "counts disagree"
    acc = sum(cm[i][i] for i in range(k)) / total
    if abs(acc - o["accuracy"]) > 1e-9:
        return "accuracy %r != trace/total %r" % (o["accuracy"], acc)
    for i, p in enumerate(per):
        if p["class"] != classes[i] or p["support"] != sum(cm[i]):
            return "per_class[%d] disagrees" % i
    return "ok"


def main(argv):
    cmd = argv[1]
    if cmd == "norm":
        repl = [tuple(a.split("=", 1)) for a in argv[3:]]
        for e in events(argv[2]):
            print(json.dumps(scrub(e, repl), sort_keys=True))
    elif cmd == "get":
        last = None
        for e in events(argv[2]):
            if e.get("event") == argv[3]:
                last = e
        if last is not None and argv[4] in last:
            print(json.dumps(last[argv[4]], sort_keys=True))
    elif cmd == "count":
        print(sum(1 for e in events(argv[2]) if e.get("event") == argv[3]))
    elif cmd == "stcmp":
        a, _ = read_st(argv[2])
        b, _ = read_st(argv[3])
        same = differ = missing = 0
        for name, (shape, raw) in a.items():
            if not any(name.startswith(p) for p in argv[4:]):
                continue
            if name not in b:
                missing += 1
            elif b[name][0] == shape and b[name][1] == raw:
                same += 1
            else:
                differ += 1
        print("same %d differ %d missing %d" % (same, differ, missing))
    elif cmd == "shape":
        t, _ = read_st(argv[2])
        print(json.dumps(t[argv[3]][0]) if argv[3] in t else "absent")
    elif cmd == "check-eval":
        with open(argv[2]) as f:
            print(check_eval(json.loads(f.read())))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
