#!/bin/bash
# make install PREFIX=… (issue 20): the binaries, sql/, the example config,
# export-weights.py and the systemd unit land under the prefix; the unit's
# ExecStart names the installed sweepd, which exists, starts, finds the
# installed sql/ and answers the installed sweepctl; DESTDIR stages without
# changing the unit's paths; README lists every hardening setting of the unit.
. "$(dirname "$0")/lib.sh"

P=$T/prefix
make -s --no-print-directory -C "$ROOT" BUILD="$BUILD" install PREFIX="$P" >"$T/make.out" 2>&1
is "make install exits 0" "$?" 0
UNIT=$P/lib/systemd/system/sweepd.service
check "the unit is installed" test -f "$UNIT"
exec_line=$(grep '^ExecStart=' "$UNIT")
like "ExecStart names the prefix's sweepd" "$exec_line" "^ExecStart=$P/bin/sweepd --foreground --config /etc/sweepd.conf\$"
exe=${exec_line#ExecStart=}
exe=${exe%% *}
check "ExecStart's program exists and is executable" test -x "$exe"
is "the unit differs from etc/sweepd.service in ExecStart only" \
    "$(diff "$ROOT/etc/sweepd.service" "$UNIT" | grep -c '^[<>]')" 2
for b in sweepd sweepctl sweep-worker; do
    check "bin/$b installed" test -x "$P/bin/$b"
done
check "sql/schema.sql installed" cmp -s "$ROOT/sql/schema.sql" "$P/share/sweepd/sql/schema.sql"
check "sql/queries.sql installed" cmp -s "$ROOT/sql/queries.sql" "$P/share/sweepd/sql/queries.sql"
is "every migration installed" "$(ls "$P/share/sweepd/sql/migrations")" "$(ls "$ROOT/sql/migrations")"
check "the example config installed" cmp -s "$ROOT/etc/sweepd.conf" "$P/share/sweepd/sweepd.conf"
check "export-weights.py installed, executable" test -x "$P/share/sweepd/export-weights.py"

# The installed daemon runs from the prefix alone: its sql/ and its worker.
S=$T/state
mkdir -p "$S"
"$exe" --foreground --state-dir "$S" --socket "$S/s.sock" --db "$S/d.db" --workers 1 \
    >"$S/log" 2>&1 &
D=$!
at_exit "kill $D 2>/dev/null; wait $D 2>/dev/null"
wait_for 20 "$P/bin/sweepctl" --socket "$S/s.sock" ping >/dev/null 2>&1
like "the installed sweepctl reaches the installed sweepd" \
    "$("$P/bin/sweepctl" --socket "$S/s.sock" ping)" '^sweepd is running'
latest=$(ls "$ROOT/sql/migrations" | sed -n 's/^0*\([0-9]*\)_.*/\1/p' | sort -n | tail -1)
is "its database has the newest schema" "$(sqlite3 "$S/d.db" 'PRAGMA user_version')" "$latest"
"$P/bin/sweepctl" --socket "$S/s.sock" shutdown >/dev/null
wait $D
is "it stops cleanly" "$?" 0

# DESTDIR stages the files; the unit still names PREFIX.
make -s --no-print-directory -C "$ROOT" BUILD="$BUILD" install PREFIX=/opt/sweepd \
    DESTDIR="$T/stage" >"$T/make2.out" 2>&1
is "make install DESTDIR=… exits 0" "$?" 0
check "staged binary" test -x "$T/stage/opt/sweepd/bin/sweepd"
like "staged unit's ExecStart is the final path" \
    "$(grep '^ExecStart=' "$T/stage/opt/sweepd/lib/systemd/system/sweepd.service")" \
    '^ExecStart=/opt/sweepd/bin/sweepd '

# README names every setting of the unit's hardening block.
settings=$(sed -n '/^# Hardening/,/^\[Install\]/p' "$ROOT/etc/sweepd.service" |
    sed -n 's/^\([A-Za-z]*\)=.*/\1/p')
check "the unit has a hardening block" test "$(echo "$settings" | wc -l)" -ge 10
missing=
for k in $settings; do
    grep -q "\`$k=" "$ROOT/README.md" || missing="$missing $k"
done
is "README lists every hardening setting" "$missing" ""
like "README says what PrivateTmp=yes means for data" "$(cat "$ROOT/README.md")" \
    'PrivateTmp=yes`.*/tmp'
done_testing
