#!/bin/bash
# Where sweepd and its workers may write, and that nothing goes through a
# shell. A real search (real sweep-worker, tiny generated data set, test-set
# evaluation at the end) runs under strace -f; then:
#  - every trial's out_dir is <state_dir>/trials/<id>, and a job that asks
#    for an out_dir of its own is refused;
#  - data paths and a job name full of shell metacharacters are used verbatim
#    (the job runs, the name is stored as given) and no command inside them
#    ever runs;
#  - every file the workers create, rename, link or delete (and every
#    directory they create) lies inside their own out_dir or the state
#    directory's cache; the daemon itself writes only inside the state
#    directory, next to its database, and its socket.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.bash"

command -v strace >/dev/null || { ok "# SKIP strace is not installed"; done_testing; }
[ -x "$BUILD/tests/train_mkdata" ] || { not_ok "missing $BUILD/tests/train_mkdata (make test-bins)"; done_testing; }
TAG=PWN$$
EVIL="$T/d;touch $TAG-1;\$(touch $TAG-2)\`touch $TAG-3\`|touch $TAG-4&& x"
"$BUILD/tests/train_mkdata" "$EVIL" 2 6 40 1 >/dev/null || { not_ok "make data"; done_testing; }
"$BUILD/tests/train_mkdata" "$T/test" 2 4 40 2 >/dev/null

mkdir -p "$T/st"
# LeakSanitizer cannot run under ptrace: with a sanitized build, leaks are
# checked by sanitized_daemon.sh, not here.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
REL_WRAP=(strace -ff -qq -s 4096 -e trace=%file,execve -o "$T/st/tr")
SWEEPD_WORKER=$BUILD/sweep-worker rel_start_daemon --workers 1 ||
    { not_ok "sweepd starts under strace"; done_testing; }
ok "sweepd starts under strace with the real worker"
# DPID is strace's pid; make sure the traced daemon (its child) goes too.
SDPID=$(cat /proc/$DPID/task/*/children 2>/dev/null | awk '{print $1; exit}')
[ -n "$SDPID" ] && at_exit "kill -9 $SDPID 2>/dev/null"

NAME="x'; DROP TABLE jobs; -- \$(touch $TAG-5) \`touch $TAG-6\`"
cat >"$T/job.py" <<'EOF'
import json, sys
evil, test, name = sys.argv[1:4]
print(json.dumps({"op": "submit", "job": {
    "name": name, "data": {"train": evil, "val_fraction": 0.34, "test": test},
    "model": {"arch": "resnet18", "weights": None, "input_size": 32, "width": 8},
    "strategy": "grid", "space": {"lr": [0.01, 0.02]},
    "fixed": {"epochs": 1, "batch_size": 4}, "seed": 4}}))
EOF
req=$("$REL_PY" "$T/job.py" "$EVIL" "$T/test" "$NAME")
reply=$(rel_rpc "$req")
like "a job with shell metacharacters in its paths and name is accepted" "$reply" '"ok": *true'
J=$(echo "$reply" | sed -n 's/.*"job": *\([0-9]*\).*/\1/p')
check "it completes with the real worker" rel_wait_job "${J:-0}" 120
is "job state" "$(rel_job_state "${J:-0}")" done
is "both trials completed" "$(rel_sql "SELECT count(*) FROM trials WHERE job_id=${J:-0} AND state='completed'")" 2
is "test_accuracy stored (the evaluation ran on the test set)" \
    "$(rel_sql "SELECT count(*) FROM trials WHERE job_id=${J:-0} AND test_accuracy IS NOT NULL")" 1
is "the name is stored verbatim" "$(rel_sql "SELECT name FROM jobs WHERE id=${J:-0}")" "$NAME"
reply=$(rel_rpc '{"op":"submit","job":{"data":{"train":"'$T'/test"},"model":{"weights":null},"space":{"lr":[0.1]},"out_dir":"/tmp/elsewhere"}}')
like "a job asking for its own out_dir is refused, naming the key" "$reply" '"ok": *false.*out_dir'
is "every out_dir is <state>/trials/<id>" \
    "$(rel_sql "SELECT count(*) FROM trials WHERE out_dir IS NOT NULL AND out_dir != '$STATE/trials/' || id")" 0
check "sweepd exits 0 on shutdown" rel_stop_daemon
found=$( (find "$T" -name "$TAG*"; find "$ROOT" -maxdepth 1 -name "$TAG*") 2>/dev/null | head -3)
is "no command hidden in the paths or the name ran" "$found" ""

# Every successful write-like system call, by process kind.
cat >"$T/writes.py" <<'EOF'
import os, re, sys
logdir, state, db, sock, out = sys.argv[1:6]
exe = {}        # pid -> program of its last execve
argv_of = {}    # pid -> argv list text
bad = []
n = {"worker": 0, "daemon": 0}
call = re.compile(r'^(\w+)\((.*)\) += (-?\d+|0x[0-9a-f]+|\?)')
def strings(args):
    return [s.encode().decode("unicode_escape") for s in re.findall(r'"((?:[^"\\]|\\.)*)"', args)]
def inside(p, d):
    p, d = os.path.normpath(p), os.path.normpath(d)
    return p == d or p.startswith(d + "/")
lines = []  # (pid, line): one file per process (strace -ff), so no split calls
for f in sorted(os.listdir(logdir)):
    pid = f.rsplit(".", 1)[-1]
    for ln in open(os.path.join(logdir, f), errors="replace"):
        lines.append((pid, ln))
for pid, ln in lines:
    m = call.match(ln)
    if not m:
        continue
    name, args, res = m.group(1), m.group(2), m.group(3)
    if res.startswith("-"):
        continue
    if name == "execve":
        s = strings(args)
        exe[pid] = s[0]
        argv_of[pid] = s[1:]
        continue
    write = False
    if name in ("open", "openat", "open_by_handle_at"):
        write = bool(re.search(r'O_WRONLY|O_RDWR|O_CREAT|O_TRUNC', args))
    elif name in ("creat", "mkdir", "mkdirat", "rename", "renameat", "renameat2", "unlink",
                  "unlinkat", "rmdir", "link", "linkat", "symlink", "symlinkat", "truncate",
                  "chmod", "fchmodat", "chown", "fchownat", "mknod", "mknodat", "utimensat"):
        write = True
    if not write:
        continue
    paths = [p for p in strings(args) if p]
    prog = exe.get(pid, "")
    if prog.endswith("sweep-worker"):
        n["worker"] += 1
        a = argv_of.get(pid, [])
        if len(a) > 2 and a[1] == "run":
            own = os.path.dirname(a[2])
        elif "--weights" in a:
            own = os.path.dirname(a[a.index("--weights") + 1])
        else:
            own = None
        for p in paths:
            full = p if p.startswith("/") else os.path.join(own or "/nonexistent", p)
            if p in ("/dev/null", "/dev/tty") or (own and inside(full, own)) \
               or inside(full, os.path.join(state, "cache")):
                continue
            if name in ("mkdir", "mkdirat") and (own and inside(own, full)):
                continue  # creating a parent of its own out_dir
            bad.append("worker %s: %s" % (pid, ln.strip()[:200]))
    elif prog.endswith("sweepd"):
        n["daemon"] += 1
        for p in paths:
            if p.startswith("/dev/") or inside(p, state) or p.startswith(db) or p == sock \
               or inside(p, out) or (name in ("mkdir", "mkdirat") and inside(state, p)):
                continue
            bad.append("daemon %s: %s" % (pid, ln.strip()[:200]))
print("COUNTS worker=%d daemon=%d" % (n["worker"], n["daemon"]))
for b in bad[:20]:
    print("BAD " + b)
EOF
res=$("$REL_PY" "$T/writes.py" "$T/st" "$STATE" "$DB" "$SOCK" "$T/sweepd.out")
echo "$res" | sed 's/^/# /' | head -25
wc=$(echo "$res" | sed -n 's/^COUNTS worker=\([0-9]*\).*/\1/p')
check "strace saw the workers write (${wc:-0} write calls)" test "${wc:-0}" -gt 0
is "workers wrote only inside their out_dir and the cache directory; sweepd only inside its state dir, db and socket" \
    "$(echo "$res" | grep -c '^BAD')" 0
done_testing
