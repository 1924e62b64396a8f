#!/bin/bash
# `sweepctl report` (README.md "Report") on a job run by sweepd with the
# scripted fake worker: 14 random trials over lr (log_uniform), freeze (a
# list) and dropout (uniform) with a median pruner, two trials failing with
# markup in their message, a job name with markup, and a test set. The page
# is then opened as a person would, in headless Chromium
# (tests/integration/report_page.py: DevTools over a pipe, every host name
# resolving to nothing), a screenshot taken, and its SVG elements counted
# against the database: one history point per finished trial with a value,
# one curve per shown trial and metric (the pruned ones cut), every searched
# parameter an axis with its scale and a scatter, the failed and pruned
# trials with the stored reasons, the chosen model's test accuracy and,
# once the evaluated trial's eval.ndjson holds a confusion matrix (the
# fake's eval prints none; the real worker's does), its cells with the class
# names escaped. No console error, no request but the file itself, no
# http(s) reference in the DOM. Also: the database is found through the
# daemon, or given with --db when none runs (the file is not changed), a
# report taken while the job runs, and the exit codes. Last, `make demo` in
# miniature (etc/demo with demo_small.sh's knobs: the real worker, about 5 s)
# ends by writing its report: opened the same way, its confusion matrix,
# class names and per-class figures are those of the worker's eval output.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"
CTL=$BUILD/sweepctl
PAGE=$ROOT/tests/integration/report_page.py
ctl() { "$CTL" --socket "$SOCK" "$@"; }
command -v chromium >/dev/null || { not_ok "chromium is installed (etc/install-deps --check)"; done_testing; exit 1; }

printf 'kill_grace = 2\ntick = 0.05\n' >"$T/sweepd.conf"
start_daemon --config "$T/sweepd.conf" --workers 1
mkdata "$T/d" '{"default":{"sleep":0.12},"rules":[
  {"match":{"trial":3},"action":"exit","code":3,"message":"bad <img src=x> & \"quoted\""},
  {"match":{"trial":9},"action":"exit","code":3,"message":"second failure"}]}'
mkdata "$T/dt" '{"test_accuracy":0.8125}'
JOB='{"name":"report <&> \"test\"","data":{"train":"'$T/d'","test":"'$T/dt'"},
 "model":{"weights":null},"strategy":"random","trials":14,"seed":7,"max_parallel":1,
 "max_retries":0,"fixed":{"epochs":3},
 "space":{"lr":{"log_uniform":[0.001,0.1]},"freeze":["none","layer3","all"],
          "dropout":{"uniform":[0,0.5]}},
 "pruner":{"median":{"warmup_epochs":1,"min_trials":2}}}'
submit "$JOB" >/dev/null

# While the job runs: the report reads a snapshot and the daemon goes on.
wait_for 60 eval '[ "$(sq "SELECT COUNT(*) FROM trials WHERE job_id=1 AND finished_at IS NOT NULL")" -ge 3 ]'
out=$(cd "$T" && "$CTL" --socket "$SOCK" report 1 2>&1); rc=$?
is "report while the job runs: exit 0" "$rc" 0
is "the default file is report-JOB.html in the current directory, printed as an absolute path" \
    "$out" "$T/report-1.html"
check "the page was written" test -s "$T/report-1.html"
check "the daemon still answers" ping_ok
wait_for 120 job_ended 1
wait_for 30 eval '[ "$(sq "SELECT COUNT(*) FROM trials WHERE job_id=1 AND test_accuracy IS NOT NULL")" = 1 ]'
is "job done" "$(job_state 1)" "done"

# The database's figures the page must show.
n_completed=$(sq "SELECT COUNT(*) FROM trials WHERE job_id=1 AND state='completed' AND val_accuracy IS NOT NULL")
n_pruned=$(sq "SELECT COUNT(*) FROM trials t WHERE job_id=1 AND state='pruned'
               AND EXISTS (SELECT 1 FROM trial_metrics m WHERE m.trial_id=t.id AND m.val_accuracy IS NOT NULL)")
n_failed=$(sq "SELECT COUNT(*) FROM trials WHERE job_id=1 AND state='failed'")
n_fp=$(sq "SELECT COUNT(*) FROM trials WHERE job_id=1 AND state IN ('failed','pruned')")
is "the job has failed trials" "$n_failed" 2
check "the job has pruned trials ($n_pruned) and completed ones ($n_completed)" \
    test "$n_pruned" -ge 1 -a "$n_completed" -ge 3
top_completed=$(sq "SELECT group_concat(id, ' ') FROM (SELECT id FROM best_trials WHERE job_id=1 ORDER BY rank, number LIMIT 8)")
top_pruned=$(sq "SELECT group_concat(id, ' ') FROM (SELECT t.id FROM trials t WHERE job_id=1 AND state='pruned'
    ORDER BY (SELECT MAX(val_accuracy) FROM trial_metrics m WHERE m.trial_id=t.id) DESC, number LIMIT 4)")
n_shown_pruned=$(wc -w <<<"$top_pruned")
chosen=$(sq "SELECT id || ' ' || printf('%.4f', test_accuracy) FROM trials WHERE job_id=1 AND test_accuracy IS NOT NULL")
err3=$(sq "SELECT error FROM trials WHERE id=3")

# With the daemon stopped: --db reads the file without changing it; without
# --db the report says how to go on.
stop_daemon
sum_before=$(sha256sum "$DB" | cut -d' ' -f1)
ls "$VAR" >"$T/var-before"
out=$("$CTL" report 1 --db "$DB" -o "$T/r.html" 2>&1); rc=$?
is "report --db with no daemon: exit 0" "$rc" 0
is "-o FILE is written and printed" "$out" "$T/r.html"
is "the database file is unchanged" "$(sha256sum "$DB" | cut -d' ' -f1)" "$sum_before"
ls "$VAR" >"$T/var-after"
# (A WAL reader that finds no -shm makes the -wal and -shm that SQLite's
# readers share, and being read-only cannot remove them: the -wal stays empty.)
is "nothing left beside the database but SQLite's own -wal and -shm" \
    "$(comm -13 "$T/var-before" "$T/var-after" | grep -vxE 'sweepd\.db-(wal|shm)')" ""
is "... and the -wal holds nothing" "$(stat -c %s "$DB-wal" 2>/dev/null || echo 0)" 0
out=$(ctl report 1 2>&1); rc=$?
is "no daemon and no --db: exit 3" "$rc" 3
like "... naming --db" "$out" "report JOB --db FILE"
out=$("$CTL" report 99 --db "$DB" -o "$T/none.html" 2>&1); rc=$?
is "unknown job: exit 1" "$rc" 1
like "... saying so" "$out" "has no job 99"
check "... and writes no page" test ! -e "$T/none.html"
out=$("$CTL" report 1 --db "$T/missing.db" 2>&1); rc=$?
is "missing database: exit 1" "$rc" 1
check "... and none is created" test ! -e "$T/missing.db"

# A user who may read the database but not write its folder (a service's
# state directory): with a writer holding the database open (its -shm
# exists) the report works; with none, sweepctl says what is missing.
# Simulated with setpriv (needs root; skipped otherwise).
NOBODY=$(id -u nobody 2>/dev/null || echo 65534)
as_nobody() { setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups -- "$@"; }
chmod 755 "$T"
if [ "$(id -u)" -eq 0 ] && as_nobody test -x "$T/." 2>/dev/null; then
    mkdir -p "$T/ro" "$T/ro-out"
    cp "$DB" "$T/ro/sweepd.db"
    chmod 755 "$T/ro"
    chmod 644 "$T/ro/sweepd.db"
    chmod 777 "$T/ro-out"
    out=$(as_nobody "$CTL" report 1 --db "$T/ro/sweepd.db" -o "$T/ro-out/a.html" 2>&1); rc=$?
    is "read-only user, no writer: exit 1" "$rc" 1
    like "... saying the -shm cannot be made" "$out" "create its -shm file beside it"
    /usr/bin/python3 -c '
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA journal_mode=WAL")
c.execute("SELECT COUNT(*) FROM jobs").fetchall()
open(sys.argv[2], "w").close(); time.sleep(30)' "$T/ro/sweepd.db" "$T/ro/held" &
    HOLD=$!
    wait_for 20 test -e "$T/ro/held"
    chmod 644 "$T/ro/sweepd.db-shm" "$T/ro/sweepd.db-wal" 2>/dev/null
    out=$(as_nobody "$CTL" report 1 --db "$T/ro/sweepd.db" -o "$T/ro-out/b.html" 2>&1); rc=$?
    is "read-only user while a writer holds it open: exit 0" "$rc" 0
    check "... the page written" test -s "$T/ro-out/b.html"
    kill "$HOLD" 2>/dev/null
    wait "$HOLD" 2>/dev/null
else
    ok "# SKIP read-only user checks (not root, no setpriv, or uid $NOBODY cannot reach $T)"
fi

# ---- the page in Chromium --------------------------------------------------
# open_page FILE PNG: report_page.py's JSON for FILE, with the counts below.
open_page() {
    /usr/bin/python3 "$PAGE" "$1" "$2" \
        --eval 'document.querySelectorAll("circle.pt").length' \
        --eval 'document.querySelectorAll("circle.pt[data-state=pruned]").length' \
        --eval '[...document.querySelectorAll("path.curve[data-metric=val_accuracy][data-state=completed]")].map(e => e.dataset.trial).join(" ")' \
        --eval '[...document.querySelectorAll("path.curve[data-metric=val_accuracy][data-state=pruned]")].map(e => e.dataset.trial).join(" ")' \
        --eval 'document.querySelectorAll("path.curve").length' \
        --eval 'document.querySelectorAll("path.cut").length' \
        --eval '[...document.querySelectorAll("svg[data-chart=parallel] g.axis[data-param]:not(.objective)")].map(e => e.dataset.param + ":" + e.dataset.scale).join(" ")' \
        --eval '[...document.querySelectorAll("svg[data-chart=scatter]")].map(e => e.dataset.param + ":" + e.dataset.scale).join(" ")' \
        --eval '[...document.querySelectorAll("svg[data-chart=scatter] path.dots")].map(e => e.dataset.n).join(" ")' \
        --eval '[...document.querySelectorAll("svg[data-chart=parallel] path.lines")].reduce((s, e) => s + +e.dataset.n, 0)' \
        --eval 'document.querySelectorAll("g.imp").length' \
        --eval 'document.querySelectorAll("tr.failure").length' \
        --eval 'document.querySelector("tr.failure[data-trial=\"3\"] td:last-child").textContent' \
        --eval 'document.getElementById("test-accuracy").textContent' \
        --eval 'document.title' \
        --eval '(document.documentElement.outerHTML.match(/https?:/g) || []).length' \
        --eval 'document.querySelectorAll("script, link, img, iframe, object, embed").length' \
        --eval 'document.querySelectorAll("rect.cell").length' \
        --eval '[...document.querySelectorAll("#per-class tr.class td:first-child")].map(e => e.textContent).join("|")' \
        --eval '[...document.querySelectorAll("#per-class tr.class")].map(e => e.children[1].textContent + "/" + e.children[2].textContent).join(" ")' \
        --eval 'document.querySelectorAll("svg[data-chart=parallel] g.axis.objective[data-param=objective]").length'
}
json=$(open_page "$T/r.html" "$T/r.png" 2>"$T/page.err")
[ -n "$json" ] || sed 's/^/# /' "$T/page.err"
v() { jf "$json" "$1"; }
is "no console errors or warnings" "$(v 'r["console"]')" "[]"
is "the only request is the file itself" "$(v 'r["requests"]')" "[\"file://$T/r.html\"]"
check "a screenshot was taken" test -s "$T/r.png"
is "PNG" "$(head -c 8 "$T/r.png" | od -An -c | tr -d ' ')" '211PNG\r\n032\n'
is "one history point per finished trial with a value" "$(v 'r["values"][0]')" "$((n_completed + n_pruned))"
is "... the pruned ones marked" "$(v 'r["values"][1]')" "$n_pruned"
is "curves of the 8 best completed trials, best first" "$(v 'r["values"][2]')" "$top_completed"
is "curves of the 4 best pruned trials" "$(v 'r["values"][3]')" "$top_pruned"
is "one curve per shown trial in each of the 4 charts" "$(v 'r["values"][4]')" \
    "$((4 * ($(wc -w <<<"$top_completed") + n_shown_pruned)))"
is "each pruned curve cut, in each chart" "$(v 'r["values"][5]')" "$((4 * n_shown_pruned))"
is "every searched parameter an axis, with its scale" "$(v 'r["values"][6]')" \
    "dropout:linear freeze:categorical lr:log"
is "... and the objective's axis last" "$(v 'r["values"][20]')" 1
is "one scatter per parameter, lr on a log axis" "$(v 'r["values"][7]')" \
    "dropout:linear freeze:categorical lr:log"
is "each scatter has a dot per completed trial" "$(v 'r["values"][8]')" \
    "$n_completed $n_completed $n_completed"
is "parallel coordinates: a line per completed trial" "$(v 'r["values"][9]')" "$n_completed"
is "an importance bar per parameter" "$(v 'r["values"][10]')" 3
is "a row per failed or pruned trial" "$(v 'r["values"][11]')" "$n_fp"
is "the stored reason, markup shown as text" "$(v 'r["values"][12]')" "$err3"
like "the chosen model's test accuracy" "$(v 'r["values"][13]')" "^${chosen#* } \\(trial number [0-9]+, id ${chosen%% *},"
is "the job name escaped, shown as text" "$(v 'r["values"][14]')" 'sweepd report: job 1 report <&> "test"'
is "no http(s) reference in the DOM" "$(v 'r["values"][15]')" 0
is "no script, link, image or frame" "$(v 'r["values"][16]')" 0
is "the fake's eval has no matrix: no cells" "$(v 'r["values"][17]')" 0
like "... and the page says why" "$(cat "$T/r.html")" "No confusion matrix: the evaluation wrote no confusion matrix"

# The real worker's eval output (worker/cmd/eval.c) in the evaluated trial's
# out_dir: the matrix, its class names escaped, precision and recall.
outdir=$(sq "SELECT out_dir FROM trials WHERE id=${chosen%% *}")
cat >"$outdir/eval.ndjson" <<'EOF'
{"loss":0.5,"accuracy":0.8125,"precision":0.8,"recall":0.8,"f1":0.8,"per_class":[],"confusion_matrix":[[5,1,0],[2,6,0],[0,0,2]],"classes":["Sandal","<b>Bag</b>","a&b \"c\""],"images":16,"weights":"w","data":"d"}
EOF
"$CTL" report 1 --db "$DB" -o "$T/r2.html" >/dev/null
json=$(open_page "$T/r2.html" "$T/r2.png" 2>"$T/page2.err")
is "confusion matrix: 3 x 3 cells" "$(v 'r["values"][17]')" 9
is "class names as text" "$(v 'r["values"][18]')" 'Sandal|<b>Bag</b>|a&b "c"'
is "per-class precision/recall from the matrix" "$(v 'r["values"][19]')" "0.7143/0.8333 0.8571/0.75 1/1"
is "still no console errors" "$(v 'r["console"]')" "[]"
is "still only the file" "$(v 'r["requests"]')" "[\"file://$T/r2.html\"]"

# ---- the demo's report: the real worker and its eval output ------------------
# etc/demo in miniature (the knobs of demo_small.sh): it ends by writing the
# report of its fine-tuning job while its daemon runs, and prints the path.
DEMO_VAR_DIR=$T/demo
dout=$(SWEEP_BUILD=$BUILD DEMO_VAR=$DEMO_VAR_DIR DEMO_PER_CLASS=8 DEMO_EVAL_PER_CLASS=10 \
    DEMO_PRETRAIN_PER_CLASS=30 DEMO_PRETRAIN_EPOCHS=1 DEMO_EPOCHS=2 DEMO_TRIALS=3 \
    DEMO_SCRATCH_LR=0.01 DEMO_WIDTH=8 DEMO_WORKERS=2 "$ROOT/etc/demo" </dev/null 2>&1); rc=$?
is "the demo exits 0" "$rc" 0
[ "$rc" = 0 ] || printf '%s\n' "$dout" | tail -n 20 | sed 's/^/# /'
page=$(printf '%s\n' "$dout" | sed -n 's/^demo: report of job 1: \(.*\) (open it.*/\1/p')
is "the demo prints the report's path" "$page" "$DEMO_VAR_DIR/demo/report-1.html"
DDB=$DEMO_VAR_DIR/sweepd.db
dsq() { sqlite3 -batch -noheader "$DDB" "$@"; }
ev=$(dsq "SELECT out_dir FROM trials WHERE job_id=1 AND test_accuracy IS NOT NULL")/eval.ndjson
# From the worker's eval output: the class names, and precision/recall per
# class from its matrix ("-" where undefined), as the page must show them.
want_cls=$(/usr/bin/python3 -c 'import json,sys; print("|".join(json.load(open(sys.argv[1]))["classes"]))' "$ev")
want_pr=$(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1])); m = r["confusion_matrix"]; n = len(m)
f = lambda a, b: "%.4g" % (a / b) if b else "-"
print(" ".join(f(m[c][c], sum(m[i][c] for i in range(n))) + "/" + f(m[c][c], sum(m[c])) for c in range(n)))
print(n * n)' "$ev")
json=$(open_page "$page" "$T/demo.png" 2>"$T/page3.err")
[ -n "$json" ] || sed 's/^/# /' "$T/page3.err"
is "demo report: no console errors" "$(v 'r["console"]')" "[]"
is "demo report: only the file" "$(v 'r["requests"]')" "[\"file://$page\"]"
check "demo report: a screenshot" test -s "$T/demo.png"
is "demo report: a history point per completed trial" "$(v 'r["values"][0]')" \
    "$(dsq "SELECT COUNT(*) FROM trials WHERE job_id=1 AND state='completed'")"
is "demo report: a curve per trial and metric" "$(v 'r["values"][4]')" \
    "$((4 * $(dsq "SELECT COUNT(*) FROM trials WHERE job_id=1 AND state='completed'")))"
is "demo report: an axis per searched parameter" "$(v 'r["values"][6]')" \
    "dropout:linear freeze:categorical lr:categorical weight_decay:log"
is "demo report: the test accuracy stored" "$(v 'r["values"][13]')" \
    "$(dsq "SELECT printf('%.4f', test_accuracy) || ' (trial number ' || number || ', id ' || id || ', on the test set)'
           FROM trials WHERE job_id=1 AND test_accuracy IS NOT NULL")"
is "demo report: a cell per pair of classes" "$(v 'r["values"][17]')" "${want_pr##*$'\n'}"
is "demo report: the checkpoint's class names" "$(v 'r["values"][18]')" "$want_cls"
is "demo report: per-class precision/recall of the worker's matrix" "$(v 'r["values"][19]')" \
    "${want_pr%%$'\n'*}"

done_testing
