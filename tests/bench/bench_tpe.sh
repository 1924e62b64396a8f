#!/bin/bash
# bench_tpe — sweepd's TPE against Optuna's TPESampler on the same synthetic
# objectives (tests/bench/tpe_objectives.c, repeated in tpe_optuna.py: mixed
# log/uniform/int/categorical spaces, minimum 0), the same budget and startup
# trials, seeds 0..SEEDS-1 on each side. Prints per objective the median final
# regret (best loss found) of sweepd's TPE, Optuna's TPE and uniform random
# search, the ratio Optuna/sweepd (> 1: sweepd's regret is lower), and the
# median distance of the best point to the optimum. CPU light; no timing.
# Environment: SEEDS (30), BUDGET (60), STARTUP (10), KEEP=1 keeps the raw lines.
set -u
ROOT=${SWEEP_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${SWEEP_BUILD:-$ROOT/build}
D=$BUILD/tests/tpe_driver
PY=/usr/bin/python3
SEEDS=${SEEDS:-30}
BUDGET=${BUDGET:-60}
STARTUP=${STARTUP:-10}
T=$(mktemp -d "${TMPDIR:-/tmp}/bench_tpe.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$T"' EXIT

if [ ! -x "$D" ]; then echo "bench_tpe: $D not built" >&2; exit 1; fi
if ! $PY -c 'import optuna' 2>/dev/null; then
    echo "bench_tpe: python3-optuna not installed (etc/install-deps --bench); skipping"
    exit 0
fi
"$D" "$SEEDS" "$BUDGET" "$STARTUP" >"$T/sweepd" || exit 1
$PY "$ROOT/tests/bench/tpe_optuna.py" "$SEEDS" "$BUDGET" "$STARTUP" >"$T/optuna" || exit 1
[ "${KEEP:-0}" = 1 ] && echo "raw lines in $T"
echo "$SEEDS seeds, $BUDGET trials ($STARTUP uniform startup trials), median over seeds"
$PY - "$T/sweepd" "$T/optuna" <<'PYEOF'
import collections, statistics, sys
regret, dist, names = collections.defaultdict(list), collections.defaultdict(list), []
for path in sys.argv[1:]:
    for line in open(path):
        name, strategy, _seed, r, d = line.split()
        if name not in names:
            names.append(name)
        regret[name, strategy].append(float(r))
        dist[name, strategy].append(float(d))
print("%-9s %12s %12s %12s %9s   %s" % ("objective", "sweepd TPE", "Optuna TPE", "random",
                                        "ratio", "distance sweepd/Optuna/random"))
for n in names:
    m = {s: statistics.median(regret[n, s]) for s in ("tpe", "optuna", "random")}
    md = {s: statistics.median(dist[n, s]) for s in ("tpe", "optuna", "random")}
    ratio = m["optuna"] / m["tpe"] if m["tpe"] > 0 else float("inf")
    print("%-9s %12.5f %12.5f %12.5f %8.2fx   %.4f / %.4f / %.4f" % (
        n, m["tpe"], m["optuna"], m["random"], ratio, md["tpe"], md["optuna"], md["random"]))
PYEOF
