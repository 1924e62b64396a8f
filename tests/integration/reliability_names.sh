#!/bin/bash
# reliability_names — foreign strings against sweepctl and submission checks
# on class folders (issue 21, items 8, 9 and 11), with sweepd and the fake
# worker:
#  - a job name holding ESC[2J, CR, BEL, a newline and U+009B (CSI), and a
#    worker error message with an OSC title sequence, print escaped ("\xHH",
#    "\u00HH") in `submit`, `status`, `status JOB`, `list`, `trial` and
#    `watch`: no control character reaches the terminal and tables keep one
#    line per row; valid UTF-8 ("café ✓") prints as it is; --json stays raw;
#  - a class folder whose name is not valid UTF-8 is refused at submission,
#    naming it escaped;
#  - a data.train with one class folder is refused (classification needs
#    two), counting class folders by the worker's rule: a link back to the
#    data folder ("Self -> .") is not a class.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"

CTL=$BUILD/sweepctl
export SWEEPD_SOCKET=$SOCK
# ctrl TEXT: prints the control characters (C0 but newline, DEL, C1) in TEXT, as hex
ctrl() { printf '%s' "$1" | "$PY" -c '
import sys
t = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
print(" ".join("%02x" % ord(c) for c in t if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) <= 0x9f))'; }
# lines TEXT: the number of lines
lines() { printf '%s\n' "$1" | wc -l; }

NAME=$'evil\e[2J\r\a\nname\xc2\x9b31m café ✓'
WANT='evil\x1b[2J\x0d\x07\x0aname\u009b31m café ✓'
mkdata "$T/d1" '{"default":{"action":"exit","code":3,"message":"class \u001b]0;pwn\u0007 of x: bad \u009b1m"}}'
"$PY" -c 'import json,sys; json.dump({"name": sys.argv[1], "data": {"train": sys.argv[2]},
    "model": {"weights": None}, "space": {"lr": [0.1]}, "max_retries": 0}, open(sys.argv[3], "w"))' \
    "$NAME" "$T/d1" "$T/job.json"
start_daemon --workers 1
check "sweepd starts" ping_ok

out=$("$CTL" submit "$T/job.json" 2>&1)
is "submit: no control character printed" "$(ctrl "$out")" ""
is "submit: two lines, as for any name" "$(lines "$out")" 2
like "submit: the name escaped, UTF-8 kept" "$out" "^submitted job 1 \\($(printf '%s' "$WANT" | sed 's/[][\\.^$*+?(){}|]/\\&/g')\\)"
wait_for 20 job_ended 1
TID=$(sq "SELECT id FROM trials WHERE job_id=1")

out=$("$CTL" list 2>&1)
is "list: no control character printed" "$(ctrl "$out")" ""
is "list: header, dashes and one row" "$(lines "$out")" 3
like "list: the row holds the escaped name" "$(sed -n 3p <<<"$out")" 'evil\\x1b\[2J\\x0d\\x07\\x0aname\\u009b31m café ✓'

out=$("$CTL" status 2>&1)
is "status: no control character printed" "$(ctrl "$out")" ""
like "status: the jobs table holds the escaped name" "$out" 'evil\\x1b\[2J'

out=$("$CTL" status 1 2>&1)
is "status JOB: no control character printed" "$(ctrl "$out")" ""
like "status JOB: the name line escaped" "$out" 'name +evil\\x1b\[2J\\x0d\\x07\\x0aname'
like "status JOB: the trial's error escaped" "$out" 'class \\x1b\]0;pwn\\x07 of x'

out=$("$CTL" trial "$TID" 2>&1)
is "trial: no control character printed" "$(ctrl "$out")" ""
like "trial: the error escaped" "$out" 'error +data error: class \\x1b\]0;pwn\\x07 of x: bad \\u009b1m'

out=$(timeout 20 "$CTL" watch 1 2>&1 </dev/null)
is "watch (plain): no control character printed" "$(ctrl "$out")" ""
like "watch: the job line names the job escaped" "$out" 'job 1 evil\\x1b\[2J'

r=$("$CTL" --json list 2>&1)
is "--json stays raw JSON: the exact name" "$(jf "$r" 'r["jobs"][0]["name"]')" "$NAME"

# ---- class folders at submission ----------------------------------------------
job() { printf '{"name":"c","data":{"train":"%s"},"model":{"weights":null},"space":{"lr":[0.1]}}' "$1" >"$T/c.json"; }
mkdir -p "$T/bytes/cat" "$T/bytes/caf"$'\xe9'
job "$T/bytes"
out=$("$CTL" submit "$T/c.json" 2>&1)
like "a non-UTF-8 class folder is refused at submission, named escaped" "$out" \
    "data\\.train: data folder $T/bytes: class folder \"caf\\\\xe9\" has a name that is not valid UTF-8"
is "... printed without the raw byte" "$(ctrl "$out")$(printf '%s' "$out" | grep -c $'\xe9')" 0
mkdir -p "$T/one/cat"
ln -s . "$T/one/Self"
job "$T/one"
out=$("$CTL" submit "$T/c.json" 2>&1)
like "one class folder (plus a link back to the data folder) is refused" "$out" \
    "data\\.train: $T/one has one class folder \\(cat\\); classification needs two or more"
is "nothing stored for the refused jobs" "$(sq 'SELECT count(*) FROM jobs')" 1
check "sweepd exits 0" stop_daemon
done_testing
