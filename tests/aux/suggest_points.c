/* suggest_points — prints Sobol points of suggest.h for the integration
 * tests (tests/integration/tpe_fake.sh compares a sobol job's trials with
 * them).
 *
 *   suggest_points SEED COUNT DIM...
 *
 * DIM is choice:N, uniform:LO:HI, log:LO:HI or int:LO:HI, in the job's
 * canonical key order. Prints COUNT lines, point 0 first: the coordinates of
 * suggest_sobol(DIMS, SEED, index) separated by spaces, %.17g (choices as
 * indexes). Exit status 2 on bad arguments. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numparse.h"
#include "suggest.h"

/* One DIM argument into D; false when it does not parse. */
static bool parse_dim(const char *arg, suggest_dim *d)
{
    char buf[256], err[128];
    snprintf(buf, sizeof buf, "%s", arg);
    char *lo_s = strchr(buf, ':');
    if (!lo_s) return false;
    *lo_s++ = 0;
    if (!strcmp(buf, "choice")) {
        *d = (suggest_dim){.kind = SUGGEST_CHOICE};
        return numparse_int("choices", lo_s, 1, 1 << 30, &d->n_choices, err, sizeof err) == 0;
    }
    char *hi_s = strchr(lo_s, ':');
    if (!hi_s) return false;
    *hi_s++ = 0;
    static const char *const names[] = {"uniform", "log", "int"};
    static const suggest_kind kinds[] = {SUGGEST_UNIFORM, SUGGEST_LOG, SUGGEST_INT};
    for (int k = 0; k < 3; k++)
        if (!strcmp(buf, names[k])) {
            *d = (suggest_dim){.kind = kinds[k]};
            return numparse_double("low", lo_s, -1e300, 1e300, &d->lo, err, sizeof err) == 0 &&
                   numparse_double("high", hi_s, -1e300, 1e300, &d->hi, err, sizeof err) == 0;
        }
    return false;
}

int main(int argc, char **argv)
{
    suggest_dim dims[SUGGEST_MAX_DIMS];
    int nd = argc - 3;
    long long seed = 0, count = 0;
    char err[128];
    if (argc < 4 || nd > SUGGEST_MAX_DIMS ||
        numparse_long("SEED", argv[1], 0, (1LL << 53) - 1, &seed, err, sizeof err) ||
        numparse_long("COUNT", argv[2], 0, 1000000, &count, err, sizeof err)) {
        fprintf(stderr, "usage: suggest_points SEED COUNT DIM...\n");
        return 2;
    }
    for (int i = 0; i < nd; i++)
        if (!parse_dim(argv[3 + i], &dims[i])) {
            fprintf(stderr, "suggest_points: bad dimension %s\n", argv[3 + i]);
            return 2;
        }
    for (long long k = 0; k < count; k++) {
        double x[SUGGEST_MAX_DIMS];
        char msg[256];
        if (suggest_sobol(dims, nd, (uint64_t)seed, (uint64_t)k, x, msg, sizeof msg)) {
            fprintf(stderr, "suggest_points: %s\n", msg);
            return 1;
        }
        for (int i = 0; i < nd; i++)
            printf("%s%.17g", i ? " " : "", x[i]);
        putchar('\n');
    }
    return 0;
}
