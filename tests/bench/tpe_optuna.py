#!/usr/bin/python3
"""The Optuna side of tests/bench/bench_tpe.sh: runs Optuna's TPESampler (its
defaults, n_startup_trials as given) on the synthetic objectives of
tests/bench/tpe_objectives.c (the same formulas, repeated here: change both
together) and prints one line per objective and seed, as tests/aux/tpe_driver
does: "NAME optuna SEED REGRET DISTANCE" (regret: the best loss found, the
objectives' minimum being 0; distance: the RMS over dimensions of the
unit-coordinate distance of the best point to the optimum, 0/1 for a category).

Usage: tpe_optuna.py [SEEDS [BUDGET [STARTUP]]]   (defaults 10, 60, 10)
"""
import math
import sys

import optuna

LOG, UNIFORM, INT, CHOICE = "log", "uniform", "int", "choice"


def unit(dim, x):
    """Position of X in DIM's range (log range for LOG)."""
    kind, lo, hi = dim
    if kind == CHOICE or hi == lo:
        return 0.0
    if kind == LOG:
        return (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (x - lo) / (hi - lo)


def loss_mixed4(d, x):
    pen = [0.25, 0.1, 0, 0.4]
    return ((unit(d[0], x[0]) - 0.65) ** 2 + (unit(d[1], x[1]) - 0.3) ** 2
            + ((x[2] - 20) / 31.0) ** 2 + pen[x[3]])


def loss_coupled4(d, x):
    pen = [0.3, 0, 0.15]
    a, b = unit(d[0], x[0]), unit(d[1], x[1])
    best_depth = 5 if x[3] == 1 else 3
    return (a - 0.5) ** 2 + 4 * (b - a + 0.1) ** 2 + ((x[2] - best_depth) / 7.0) ** 2 + pen[x[3]]


def loss_wide8(d, x):
    pen = [0.2, 0.3, 0.1, 0, 0.2]
    target = [0.2, 0.8, 0.55, 0.3, 0.7]
    s = sum((unit(d[i], x[i]) - target[i]) ** 2 for i in range(5))
    return s + ((x[5] - 7) / 15.0) ** 2 + ((x[6] - 2) / 9.0) ** 2 + pen[x[7]]


OBJECTIVES = [
    ("mixed4", [(LOG, 1e-5, 1), (UNIFORM, 0, 1), (INT, 1, 32), (CHOICE, 0, 3)],
     [10 ** -1.75, 0.3, 20, 2], loss_mixed4),
    ("coupled4", [(LOG, 1e-4, 1e-1), (LOG, 1e-6, 1e-2), (INT, 1, 8), (CHOICE, 0, 2)],
     [10 ** -2.5, 10 ** -4.4, 5, 1], loss_coupled4),
    ("wide8", [(UNIFORM, 0, 1), (UNIFORM, -1, 1), (UNIFORM, 0, 10), (LOG, 1e-3, 1e3),
               (LOG, 1, 100), (INT, 0, 15), (INT, -4, 5), (CHOICE, 0, 4)],
     [0.2, 0.6, 5.5, 10 ** -1.2, 10 ** 1.4, 7, 2, 3], loss_wide8),
]


def suggest(trial, i, dim):
    kind, lo, hi = dim
    name = "x%d" % i
    if kind == LOG:
        return trial.suggest_float(name, lo, hi, log=True)
    if kind == UNIFORM:
        return trial.suggest_float(name, lo, hi)
    if kind == INT:
        return trial.suggest_int(name, lo, hi)
    return trial.suggest_categorical(name, list(range(lo, hi + 1)))


def distance(dims, opt, x):
    s = 0.0
    for dim, o, v in zip(dims, opt, x):
        s += (v != o) if dim[0] == CHOICE else (unit(dim, v) - unit(dim, o)) ** 2
    return math.sqrt(s / len(dims))


def main():
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    budget = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    startup = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name, dims, opt, loss in OBJECTIVES:
        for seed in range(seeds):
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
            study = optuna.create_study(sampler=sampler)
            points = {}

            def objective(trial):
                x = [suggest(trial, i, d) for i, d in enumerate(dims)]
                points[trial.number] = x
                return loss(dims, x)

            study.optimize(objective, n_trials=budget)
            best = study.best_trial
            print("%s optuna %d %.6g %.6g" % (name, seed, best.value,
                                               distance(dims, opt, points[best.number])))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
