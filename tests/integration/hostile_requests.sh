#!/bin/bash
# Hostile input against a real sweepd (with the fake worker): a corpus of bad
# requests and job specs — invalid JSON, wrong types, NaN and infinities,
# huge numbers, zero/negative learning rates, empty and huge grids, unknown
# keys, missing or unusable paths, bad distributions and ranges. Each must be
# answered with {"ok":false,"error":{"code":..,"message":..}} whose text names
# the fault (a regex per case), nothing may be stored for a refused job, and
# the daemon must answer {"op":"ping"} on a new connection after every one.
# Framing and connection abuse (long lines, garbage, silence, 1000
# connections, a client that never reads) is in hostile_connections.sh.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.bash"

rel_setup_data
mkdir -p "$T/notdir" && : >"$T/plainfile" && mkdir -p "$T/weights_dir"
ln -s "$T/nowhere" "$T/dangling"
rel_start_daemon --workers 1 || { not_ok "sweepd starts"; done_testing; }
ok "sweepd starts and answers ping"

cat >"$T/hostile.py" <<'EOF'
import copy, json, os, re, sys
sys.path.insert(0, os.environ["REL_DIR"])
from reliability_client import Conn, rpc, ping_ok

SOCK, T = sys.argv[1], sys.argv[2]
TRAIN = T + "/data/train"
BASE = {"name": "hostile", "data": {"train": TRAIN},
        "model": {"arch": "resnet18", "weights": None, "input_size": 32, "width": 8},
        "strategy": "grid", "space": {"lr": [0.1]}, "fixed": {"epochs": 1}, "seed": 1}
DEL = object()

def job(*mods):
    """BASE with (dotted path, value) changes; value DEL removes the key."""
    j = copy.deepcopy(BASE)
    for path, val in mods:
        keys = path.split(".")
        o = j
        for k in keys[:-1]:
            o = o.setdefault(k, {})
        if val is DEL:
            o.pop(keys[-1], None)
        else:
            o[keys[-1]] = val
    return j

def submit(*mods):
    return json.dumps({"op": "submit", "job": job(*mods)}, allow_nan=True)

def submit_raw(job_text):
    return '{"op":"submit","job":' + job_text + '}'

BASE_TXT = json.dumps(BASE)
big_grid = {k: v for k, v in [("lr", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.01]),
            ("batch_size", list(range(1, 11))), ("epochs", list(range(1, 11))),
            ("dropout", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
            ("weight_decay", [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.2, 0.3, 0.4, 0.5]),
            ("momentum", [0.0, 0.5, 0.9, 0.95, 0.99, 0.1, 0.2, 0.3, 0.4, 0.6])]}

# (name, request line (str/bytes), regex the "code: message" text must match)
CASES = [
    # -- invalid JSON
    ("unterminated object", '{', r"(?i)json|pars|column|end of"),
    ("unterminated request", '{"op":"ping"', r"(?i)json|pars|column|end of"),
    ("bare word value", '{"op":ping}', r"(?i)json|pars|column|invalid token"),
    ("unterminated array", '[1,2', r"(?i)json|pars|column"),
    ("truncated literal", 'nul', r"(?i)json|pars|column|invalid"),
    ("trailing comma", '{"op":"ping",}', r"(?i)json|pars|column|string or"),
    ("single quotes", "{'op':'ping'}", r"(?i)json|pars|column|string or"),
    ("two values on one line", '{"op":"ping"}{"op":"ping"}', r"(?i)json|pars|column|end of file|garbage|after"),
    ("lone surrogate escape", '{"op":"\\ud800"}', r"(?i)json|pars|column|surrogate|unicode|escape"),
    ("invalid UTF-8", b'{"op":"\xff\xfe"}', r"(?i)json|pars|utf|column|invalid"),
    ("invalid escape before a multi-byte character", b'{"op":"\\u00\xc2\x98"}', r"(?i)json|pars|escape|column"),
    ("invalid token that is a multi-byte character", '{"op": \u4e2d\u6587}'.encode().decode("unicode_escape").encode("utf-8"), r"(?i)json|pars|column|invalid"),
    ("NUL byte inside the line", b'{"op":"pi\x00ng"}', r"(?i)json|pars|nul|column|invalid|control"),
    ("escaped NUL in a string", '{"op":"ping\\u0000"}', r"(?i)json|pars|nul|column|op|\\u0000|unknown"),
    ("duplicate keys", '{"op":"ping","op":"status"}', r"(?i)duplicate"),
    ("nesting 100000 deep", '[' * 100000 + ']' * 100000, r"(?i)json|pars|depth|nest|column|too"),
    # -- wrong types and shapes of requests
    ("array instead of object", '[]', r"(?i)object|request"),
    ("number instead of object", '42', r"(?i)object|request"),
    ("string instead of object", '"ping"', r"(?i)object|request"),
    ("null request", 'null', r"(?i)object|request"),
    ("missing op", '{}', r"\bop\b"),
    ("op is a number", '{"op":42}', r"\bop\b.*(string|42)|expected a string"),
    ("op is null", '{"op":null}', r"\bop\b"),
    ("unknown op", '{"op":"explode"}', r"explode"),
    ("unknown op of 40 CJK characters", json.dumps({"op": "\u4e2d" * 40}, ensure_ascii=False).encode(), r"\u4e2d\u4e2d|unknown op"),
    ("unknown op of 60 accented letters", json.dumps({"op": "\u00e9" * 60}, ensure_ascii=False).encode(), r"\u00e9\u00e9|unknown op"),
    ("op in upper case", '{"op":"PING"}', r"PING"),
    ("misspelt request key", '{"op":"status","jbo":3}', r"jbo"),
    ("job id as a string", '{"op":"status","job":"3"}', r"\bjob\b"),
    ("negative job id", '{"op":"status","job":-1}', r"\bjob\b|-1"),
    ("fractional job id", '{"op":"status","job":1.5}', r"\bjob\b|1\.5"),
    ("job id 2^63", '{"op":"status","job":9223372036854775808}', r"(?i)\bjob\b|too big|overflow|range|json|pars"),
    ("unknown job", '{"op":"status","job":99999}', r"99999"),
    ("cancel an unknown job", '{"op":"cancel","job":12345}', r"12345"),
    ("best with a negative limit", '{"op":"best","job":1,"limit":-5}', r"limit"),
    ("best with a string limit", '{"op":"best","job":1,"limit":"x"}', r"limit"),
    ("trial without id", '{"op":"trial"}', r"\bid\b"),
    ("trial id 1e300", '{"op":"trial","id":1e300}', r"\bid\b"),
    ("watch an unknown job", '{"op":"watch","job":424242}', r"424242"),
    ("submit without job", '{"op":"submit"}', r"\bjob\b"),
    ("job is a string", '{"op":"submit","job":"x"}', r"\bjob\b"),
    ("job is an array", '{"op":"submit","job":[]}', r"\bjob\b"),
    # -- NaN, infinities, huge numbers
    ("NaN in space.lr", submit(("space.lr", [float("nan")])), r"(?i)nan|json|pars|space\.lr"),
    ("Infinity in space.lr", submit(("space.lr", [float("inf")])), r"(?i)infinity|json|pars|space\.lr"),
    ("-Infinity in fixed.lr", submit(("space", {"batch_size": [8]}), ("fixed.lr", float("-inf"))), r"(?i)infinity|json|pars|fixed\.lr"),
    ("NaN in a ping", '{"op":"ping","x":NaN}', r"(?i)nan|json|pars"),
    ("lr 1e400 (overflows a double)", submit_raw(BASE_TXT.replace('"lr": [0.1]', '"lr": [1e400]')), r"(?i)space\.lr|overflow|range|json|pars"),
    ("batch_size 10^23", submit_raw(BASE_TXT.replace('"epochs": 1}', '"epochs": 1, "batch_size": 99999999999999999999999}')), r"(?i)batch_size|too big|overflow|json|pars"),
    ("epochs 1e10", submit(("fixed.epochs", 1e10)), r"fixed\.epochs"),
    ("seed 2^64", submit_raw(BASE_TXT.replace('"seed": 1', '"seed": 18446744073709551616')), r"(?i)seed|too big|overflow|json|pars"),
    ("seed negative", submit(("seed", -1)), r"seed"),
    # -- learning rates
    ("lr zero", submit(("space.lr", [0])), r"space\.lr\[0\]"),
    ("lr negative", submit(("space.lr", [0.1, -0.1])), r"space\.lr\[1\]"),
    ("lr negative zero", submit(("space.lr", [-0.0])), r"space\.lr\[0\]"),
    ("lr as a string", submit(("space.lr", ["0.1"])), r"space\.lr\[0\]"),
    ("fixed lr zero", submit(("space", {"batch_size": [8]}), ("fixed.lr", 0)), r"fixed\.lr"),
    ("log_uniform lr from 0", submit(("strategy", "random"), ("trials", 2), ("space.lr", {"log_uniform": [0, 0.1]})), r"space\.lr"),
    # -- grids
    ("empty list in the grid", submit(("space.lr", [])), r"space\.lr"),
    ("grid value not a list", submit(("space.lr", 0.1)), r"space\.lr"),
    ("grid of 10^6 points", submit(("space", big_grid)), r"(?i)space|grid|too many|points|1000000"),
    ("random with 0 trials", submit(("strategy", "random"), ("trials", 0)), r"trials"),
    ("random with 10^9 trials", submit(("strategy", "random"), ("trials", 10**9)), r"trials"),
    ("random without trials", submit(("strategy", "random")), r"trials"),
    ("uniform reversed bounds", submit(("strategy", "random"), ("trials", 2), ("space.dropout", {"uniform": [0.5, 0.1]})), r"space\.dropout"),
    ("int_uniform with reals", submit(("strategy", "random"), ("trials", 2), ("fixed.epochs", DEL), ("space.epochs", {"int_uniform": [1.5, 3]})), r"space\.epochs"),
    ("unknown distribution", submit(("strategy", "random"), ("trials", 2), ("space.lr", {"normal": [0, 1]})), r"(?i)space\.lr|normal"),
    ("distribution in a grid", submit(("space.lr", {"uniform": [0.1, 0.2]})), r"space\.lr"),
    ("unknown strategy", submit(("strategy", "bayes")), r"strategy"),
    # -- unknown keys
    ("unknown top-level key", submit(("colour", 1)), r"colour"),
    ("misspelt fixed key", submit(("fixed.optimiser", "sgd")), r"optimiser"),
    ("unknown space key", submit(("space.learning_rate", [0.1])), r"learning_rate"),
    ("unknown data key", submit(("data.extra", 1)), r"extra"),
    ("misspelt model key", submit(("model.weigths", None)), r"weigths"),
    ("key both searched and fixed", submit(("fixed.lr", 0.1)), r"lr"),
    # -- values out of range
    ("dropout 1.0", submit(("fixed.dropout", 1.0)), r"fixed\.dropout"),
    ("momentum negative", submit(("fixed.momentum", -0.5)), r"fixed\.momentum"),
    ("batch_size 0", submit(("space.batch_size", [0])), r"space\.batch_size"),
    ("optimizer rmsprop", submit(("fixed.optimizer", "rmsprop")), r"(?i)fixed\.optimizer|rmsprop"),
    ("freeze layer9", submit(("fixed.freeze", "layer9")), r"(?i)fixed\.freeze|layer9"),
    ("augment as a string", submit(("fixed.augment", "yes")), r"fixed\.augment"),
    ("warmup not below epochs", submit(("fixed.warmup_epochs", 1)), r"warmup"),
    ("val_fraction 1.5", submit(("data.val_fraction", 1.5)), r"val_fraction"),
    ("input_size 0", submit(("model.input_size", 0)), r"input_size"),
    ("unknown arch", submit(("model.arch", "alexnet")), r"(?i)model\.arch|alexnet"),
    ("unknown objective metric", submit(("objective", {"metric": "accuracy", "goal": "maximize"})), r"(?i)objective\.metric|accuracy"),
    ("bad objective goal", submit(("objective", {"metric": "val_accuracy", "goal": "max"})), r"(?i)objective\.goal|max"),
    ("max_parallel 0", submit(("max_parallel", 0)), r"max_parallel"),
    ("negative trial_timeout", submit(("trial_timeout", -5)), r"trial_timeout"),
    ("max_retries -1", submit(("max_retries", -1)), r"max_retries"),
    ("name is a number", submit(("name", 5)), r"name"),
    # -- paths
    ("missing data.train", submit(("data.train", DEL)), r"data\.train"),
    ("data.train does not exist", submit(("data.train", T + "/nope")), r"data\.train"),
    ("data.train is a file", submit(("data.train", T + "/plainfile")), r"data\.train"),
    ("data.train under a file", submit(("data.train", T + "/plainfile/x")), r"data\.train"),
    ("data.train dangling symlink", submit(("data.train", T + "/dangling")), r"data\.train"),
    ("data.train empty string", submit(("data.train", "")), r"data\.train"),
    ("data.train with a NUL", submit_raw(BASE_TXT.replace(TRAIN, TRAIN + "\\u0000x")), r"(?i)data\.train|nul|json|pars"),
    ("data.val missing", submit(("data.val", T + "/nope-val")), r"data\.val"),
    ("data.test missing", submit(("data.test", T + "/nope-test")), r"data\.test"),
    ("model.weights missing", submit(("model.weights", T + "/nope.safetensors")), r"model\.weights"),
    ("model.weights is a directory", submit(("model.weights", T + "/weights_dir")), r"model\.weights"),
]

passed = failed = 0

def result(good, name, detail=""):
    global passed, failed
    if good:
        passed += 1
        print("PASS " + name, flush=True)
    else:
        failed += 1
        print("FAIL " + name + (": " + detail if detail else ""), flush=True)

def jobs_count():
    r = rpc(SOCK, {"op": "status"})
    if not isinstance(r, dict) or not r.get("ok"):
        return None
    return len(r.get("jobs", []))

before = jobs_count()
for name, line, want in CASES:
    if isinstance(line, str):
        line = line.encode()
    try:
        c = Conn(SOCK, 5)
        c.send(line + b"\n")
        r = c.reply(5)
        c.close()
    except OSError as e:
        r = {"_oserror": str(e)}
    ok = (isinstance(r, dict) and r.get("ok") is False and isinstance(r.get("error"), dict)
          and isinstance(r["error"].get("code"), str) and isinstance(r["error"].get("message"), str)
          and r["error"]["message"] != "")
    text = "%s: %s" % (r["error"]["code"], r["error"]["message"]) if ok else json.dumps(r)
    named = ok and re.search(want, text) is not None
    result(named, "%s -> error naming the fault" % name,
           "reply %s does not match /%s/" % (text[:300], want))
    result(ping_ok(SOCK), "%s -> ping still answered" % name)
after = jobs_count()
result(before is not None and before == after,
       "no refused job was stored (jobs before %s, after %s)" % (before, after))
# Positive control: the base job is accepted, so the refusals above are about
# the changes, not about a base the daemon would refuse anyway.
r = rpc(SOCK, {"op": "submit", "job": BASE})
result(isinstance(r, dict) and r.get("ok") is True and r.get("trials") == 1,
       "the unmodified base job is accepted", json.dumps(r))
print("CASES %d" % len(CASES))
EOF

REL_DIR=$REL_DIR "$REL_PY" "$T/hostile.py" "$SOCK" "$T" >"$T/hostile.out" 2>&1
while IFS= read -r line; do
    case $line in
        PASS\ *) ok "${line#PASS }" ;;
        FAIL\ *) not_ok "${line#FAIL }" ;;
        CASES\ *) n=${line#CASES }; check "at least 60 hostile cases ($n)" test "$n" -ge 60 ;;
        *) echo "# $line" ;;
    esac
done <"$T/hostile.out"
check "sweepd still running" kill -0 "$DPID"
check "sweepd exits 0 on shutdown" rel_stop_daemon
check "database integrity after the hostile corpus" \
    test "$(rel_sql 'PRAGMA integrity_check')" = ok
done_testing
