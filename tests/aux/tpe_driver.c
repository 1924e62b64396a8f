/* tpe_driver — the sweepd side of tests/bench/bench_tpe.sh: runs sweepd's TPE
 * (and uniform random search) on the synthetic objectives of
 * tests/bench/tpe_objectives.c and prints one line per objective, strategy and
 * seed: "NAME STRATEGY SEED REGRET DISTANCE" (regret: the best loss found, the
 * objectives' minimum being 0; distance: tpo_distance of the best point).
 *
 *   tpe_driver [SEEDS [BUDGET [STARTUP]]]    (defaults 10, 60, 10; seeds 0..SEEDS-1) */
#include "../bench/tpe_objectives.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int seeds = argc > 1 ? atoi(argv[1]) : 10;
    int budget = argc > 2 ? atoi(argv[2]) : 60;
    int startup = argc > 3 ? atoi(argv[3]) : 10;
    if (seeds < 1 || budget < 1 || startup < 0) {
        fprintf(stderr, "usage: tpe_driver [SEEDS [BUDGET [STARTUP]]]\n");
        return 2;
    }
    char msg[256];
    for (int k = 0; k < TPO_COUNT; k++) {
        const tpo_objective *o = &TPO_OBJECTIVES[k];
        for (int tpe = 1; tpe >= 0; tpe--)
            for (int s = 0; s < seeds; s++) {
                double x[TPO_MAX_DIMS], loss;
                if (tpo_run(o, tpe, budget, startup, (uint64_t)s, x, &loss, msg, sizeof msg)) {
                    fprintf(stderr, "tpe_driver: %s seed %d: %s\n", o->name, s, msg);
                    return 1;
                }
                printf("%s %s %d %.6g %.6g\n", o->name, tpe ? "tpe" : "random", s, loss,
                       tpo_distance(o, x));
            }
    }
    return 0;
}
