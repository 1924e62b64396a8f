"""Structured request fuzzing against a live sweepd (hostile_mutations.sh and
sanitized_daemon.sh). Standard library only.

  reliability_mutate.py SOCKET TRAIN_DIR COUNT SEED

Builds COUNT requests by mutating valid ones (every op, grid and random
submits): replacing a node of the JSON tree with a value from a pool of
awkward ones (wrong types, huge/tiny/negative numbers, long strings, deep
nesting, NaN/Infinity literals), deleting or adding keys, and raw text
damage (truncation, byte flips, literal swaps). The same SEED gives the same
requests. Each request goes over a pipelined connection (a new one every 50)
and must get exactly one reply line: JSON with a boolean "ok", and on false
an error object with non-empty "code" and "message" strings. Accepted jobs are
cancelled at once. Every 100 requests a ping on a fresh connection must
succeed. Prints "PASS ..."/"FAIL ..." lines and "INFO ..." figures.
"""
import copy
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reliability_client import Conn, ping_ok, rpc  # noqa: E402

SOCK, TRAIN, COUNT, SEED = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(SEED)

GRID = {"name": "mut", "data": {"train": TRAIN, "val_fraction": 0.2},
        "model": {"arch": "resnet18", "weights": None, "input_size": 32, "width": 8},
        "strategy": "grid", "space": {"lr": [0.1, 0.01], "batch_size": [8]},
        "fixed": {"epochs": 1, "optimizer": "sgd", "momentum": 0.9, "freeze": "none",
                  "augment": False, "lr_schedule": "cosine", "warmup_epochs": 0},
        "objective": {"metric": "val_accuracy", "goal": "maximize"},
        "max_parallel": 1, "trial_timeout": 60, "max_retries": 0, "seed": 1}
RANDOM = {"name": "mut-r", "data": {"train": TRAIN},
          "model": {"arch": "resnet18", "weights": None, "input_size": 32, "width": 8},
          "strategy": "random", "trials": 3,
          "space": {"lr": {"log_uniform": [0.0001, 0.1]}, "dropout": {"uniform": [0, 0.5]},
                    "epochs": {"int_uniform": [1, 2]}, "optimizer": ["sgd", "adam"]},
          "seed": 2}
BASES = [
    {"op": "ping"}, {"op": "status"}, {"op": "status", "job": 1}, {"op": "cancel", "job": 1},
    {"op": "best", "job": 1, "limit": 3}, {"op": "trial", "id": 1},
    {"op": "submit", "job": GRID}, {"op": "submit", "job": RANDOM},
]
POOL = [None, True, False, 0, -1, 1, 2, 0.5, -0.0, 1e-320, 1e308, -1e308, 2 ** 31, 2 ** 53 + 1,
        2 ** 63 - 1, -2 ** 63, "", "x", "0.1", "sgd", "grid", "random", "../../etc/passwd",
        "/dev/null", "\u00e9\u4e2d\U0001F600", "a" * 5000, [], [None], [0.1, "x"], list(range(300)),
        {}, {"uniform": [0, 1]}, {"log_uniform": [0, 1]}, {"int_uniform": [5, 1]}, {"a": {"b": {}}}]
RAW_SWAPS = [("0.1", "NaN"), ("0.01", "Infinity"), ("1", "-Infinity"), ("true", "tru"),
             ("null", "nul"), ("\"", "'"), (",", ",,"), (":", "::"), ("}", "}}"), ("[", "[[")]


def nodes(v, path=()):
    yield path, v
    if isinstance(v, dict):
        for k in list(v):
            yield from nodes(v[k], path + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from nodes(x, path + (i,))


def set_at(root, path, val):
    if not path:
        return val
    o = root
    for p in path[:-1]:
        o = o[p]
    o[path[-1]] = val
    return root


def mutate(req):
    r = copy.deepcopy(req)
    for _ in range(rnd.choice([1, 1, 1, 2, 3])):
        all_nodes = list(nodes(r))
        path, v = rnd.choice(all_nodes)
        kind = rnd.random()
        if kind < 0.5:
            val = copy.deepcopy(rnd.choice(POOL))
            if rnd.random() < 0.05:
                val = [[[[[[[[val]]]]]]]]
            r = set_at(r, path, val)
        elif kind < 0.7 and path:
            parent = r
            for p in path[:-1]:
                parent = parent[p]
            if isinstance(parent, dict):
                del parent[path[-1]]
            elif isinstance(parent, list):
                parent.pop(path[-1])
        elif kind < 0.85 and isinstance(v, dict):
            v[rnd.choice(["extra", "lr", "op", "job", "trials", "space", "seed", "Lr"])] = \
                copy.deepcopy(rnd.choice(POOL))
        elif isinstance(v, list) and v:
            v.extend(v * rnd.choice([1, 10, 100]))
    text = json.dumps(r)
    if rnd.random() < 0.25:
        k = rnd.random()
        if k < 0.3:
            text = text[:rnd.randrange(len(text) + 1)]
        elif k < 0.6:
            a, b = rnd.choice(RAW_SWAPS)
            if a in text:
                i = text.index(a)
                text = text[:i] + b + text[i + len(a):]
        else:
            i = rnd.randrange(len(text) + 1)
            text = text[:i] + chr(rnd.randrange(0, 256)) + text[i:]
    text = text.replace("\n", " ").replace("\r", " ")
    return text.encode("utf-8", "surrogatepass")


def good_reply(r):
    if not isinstance(r, dict) or not isinstance(r.get("ok"), bool):
        return False
    if r["ok"]:
        return True
    e = r.get("error")
    return (isinstance(e, dict) and isinstance(e.get("code"), str) and e["code"] != ""
            and isinstance(e.get("message"), str) and e["message"] != "")


bad = []
accepted = 0
batch = 50
sent = 0
while sent < COUNT:
    reqs = [mutate(rnd.choice(BASES)) for _ in range(min(batch, COUNT - sent))]
    c = Conn(SOCK, 30)
    c.send(b"".join(x + b"\n" for x in reqs if x) or b"\n")
    for x in reqs:
        if not x:
            continue  # an empty line gets no reply by design
        r = c.reply(5)
        if not good_reply(r):
            bad.append((x[:200], r))
        elif r.get("ok") and isinstance(r.get("job"), int) and b'"submit"' in x:
            accepted += 1
            rpc(SOCK, {"op": "cancel", "job": r["job"]})
    c.close()
    sent += len(reqs)
    if sent % 100 == 0 and not ping_ok(SOCK):
        bad.append((b"(ping after %d requests)" % sent, None))
        break
print("INFO %d mutated requests, %d jobs accepted (and cancelled), %d bad replies"
      % (sent, accepted, len(bad)))
for x, r in bad[:5]:
    print("INFO bad: request %r -> reply %r" % (x, r))
ok = not bad and ping_ok(SOCK)
print(("PASS " if ok else "FAIL ") + "%d mutated requests (seed %d) each answered with one "
      "well-formed reply; ping still answered" % (sent, SEED))
