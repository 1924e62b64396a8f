#!/bin/bash
# sweepd under storage faults and awkward client strings, with the fake worker:
#  - replies are never dropped: an unknown op of 40 CJK characters (cut at a
#    character boundary, not mid-character) and a line whose parse error
#    quotes half a UTF-8 character both get one well-formed error line; a
#    worker's long error message is stored cut at a character boundary;
#  - a file-size limit (RLIMIT_FSIZE, as LimitFSIZE= or `ulimit -f` set it)
#    does not kill sweepd (SIGXFSZ ignored): a submission gets an error naming
#    the limit and the database, the finished trial's writes are kept and
#    stored once the limit is lifted, and later work completes;
#  - a trial whose files cannot be written (ENOSPC: its trial.json.tmp is
#    made a link to /dev/full) goes back to queued without using an attempt,
#    is retried at later ticks with one log line for all the failures, and
#    completes once the files can be written.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.bash"

start_daemon --workers 1
ping_ok || { not_ok "sweepd starts"; done_testing; exit; }
ok "sweepd starts"

# ---- replies always come (B7/B8) ----
cjk=$("$PY" -c 'print("\u4e2d" * 40)')
printf '{"op":"%s"}\n' "$cjk" >"$T/cjk.req"
r=$(timeout 10 "$PY" "$T/client.py" raw "$SOCK" "$T/cjk.req" 1)
like "unknown op of 40 CJK characters: an error reply" "$r" '"code":"unknown_op"'
is "... that is valid JSON with whole characters" \
    "$("$PY" -c 'import json,sys; m=json.loads(sys.argv[1])["error"]["message"]; print("\ufffd" not in m and "\u4e2d" in m)' "$r")" True
printf '{"op":"\\u00\xc2\x98"}\n' >"$T/half.req"
r=$(timeout 10 "$PY" "$T/client.py" raw "$SOCK" "$T/half.req" 1)
like "invalid escape before a multi-byte character: an error reply" "$r" '"ok":false,"error":\{"code":"invalid_json"'
check "ping after them" ping_ok
# A worker's error message longer than the daemon keeps (1000 bytes of the
# message, 767 of the stored error), cut where a 2-byte character would be
# split: the stored error keeps whole characters.
long=$("$PY" -c 'print("ab" + "\u00e9" * 600)')
mkdata "$T/longerr" '{"default":{"action":"exit","code":3,"message":"'"$long"'"}}'
JL=$(dc get '{"op":"submit","job":{"name":"longerr","data":{"train":"'$T'/longerr"},"model":{"weights":null},"space":{"lr":[0.1]}}}' 'r.get("job")')
wait_for 10 job_ended "$JL"
TL=$(sq "SELECT id FROM trials WHERE job_id=$JL")
r=$(dc req '{"op":"trial","id":'"$TL"'}')
is "a long worker error is stored and shown cut at a character boundary" \
    "$(jf "$r" 'len(r["trial"]["error"] or "") > 300 and r["trial"]["error"].endswith("\u00e9")')" true

# ---- file-size limit (B9, B5) ----
mkdata "$T/slow" '{"default":{"sleep":1.5}}'
J=$(dc get '{"op":"submit","job":{"name":"slow","data":{"train":"'$T'/slow"},"model":{"weights":null},"space":{"lr":[0.1]},"fixed":{"epochs":1}}}' 'r.get("job")')
wait_for 10 test "$(sq "SELECT state FROM trials WHERE job_id=$J")" = running
check "trial of job $J running" test "$(sq "SELECT state FROM trials WHERE job_id=$J")" = running
check "lower sweepd's file-size limit to 1 byte (soft)" prlimit --pid "$DPID" --fsize=1:unlimited
r=$(dc req '{"op":"submit","job":{"name":"refused","data":{"train":"'$T'/slow"},"model":{"weights":null},"space":{"lr":[0.2]}}}')
check "sweepd survives writing past its file-size limit (SIGXFSZ)" kill -0 "$DPID"
like "the submission gets an error reply" "$r" '"ok":false,"error":\{"code":"io"'
like "... naming the file-size limit and the database" "$r" "file-size limit of 1 bytes \\($DB: File too large\\)"
check "ping answered at the limit" ping_ok
like "status answered at the limit" "$(dc req '{"op":"status"}')" '"ok":true'
# The trial finishes meanwhile; its rows cannot be written yet.
sleep 2.5
check "still running after the trial ended" kill -0 "$DPID"
is "the database does not have the result yet" "$(sq "SELECT state FROM trials WHERE job_id=$J")" running
check "lift the limit" prlimit --pid "$DPID" --fsize=unlimited:unlimited
wait_for 10 job_ended "$J"
is "the kept writes are stored: job done" "$(job_state "$J")" done
is "... trial completed with its epoch row" \
    "$(sq "SELECT t.state || ' ' || count(m.epoch) FROM trials t LEFT JOIN trial_metrics m ON m.trial_id = t.id WHERE t.job_id=$J")" "completed 1"
is "the refused job left nothing behind" "$(sq "SELECT count(*) FROM jobs WHERE name='refused'")" 0
J2=$(dc get '{"op":"submit","job":{"name":"after","data":{"train":"'$T'/slow"},"model":{"weights":null},"space":{"lr":[0.3]},"fixed":{"epochs":1}}}' 'r.get("job")')
wait_for 15 job_ended "$J2"
is "a job after the limit completes" "$(job_state "$J2")" done

# ---- trial files cannot be written (B6) ----
mkdata "$T/quick" '{}'
# The next trial id is known: make its trial.json.tmp a link to /dev/full
# (every write: ENOSPC), and keep making it while the daemon retries (a
# failed write removes the partial file).
NEXT=$(( $(sq "SELECT max(id) FROM trials") + 1 ))
mkdir -p "$VAR/trials/$NEXT"
( for i in $(seq 1 40); do ln -sf /dev/full "$VAR/trials/$NEXT/trial.json.tmp" 2>/dev/null; sleep 0.1; done ) &
FILLER=$!
J3=$(dc get '{"op":"submit","job":{"name":"nospace","data":{"train":"'$T'/quick"},"model":{"weights":null},"space":{"lr":[0.1]},"fixed":{"epochs":1},"max_retries":0}}' 'r.get("job")')
wait "$FILLER"
rm -f "$VAR/trials/$NEXT/trial.json.tmp"
wait_for 15 job_ended "$J3"
is "the trial that met a full disk completes once space returns" \
    "$(sq "SELECT state || ' attempt ' || attempt FROM trials WHERE job_id=$J3")" "completed attempt 0"
is "job done" "$(job_state "$J3")" done
n_fail=$(grep -c "trial $NEXT (job $J3 #0) running -> queued, attempt 0: its files could not be written" "$DLOG")
check "it was retried at later ticks ($n_fail failed starts)" test "$n_fail" -ge 2
is "one warning for all of its failures" \
    "$(grep -c "trial $NEXT: cannot write .*No space left on device; back to queued without using an attempt" "$DLOG")" 1
like "and a line when it could be written again" "$(cat "$DLOG")" "trial $NEXT: its files could be written again"
check "sweepd exits 0" stop_daemon
is "integrity_check" "$(sq 'PRAGMA integrity_check')" ok
done_testing
