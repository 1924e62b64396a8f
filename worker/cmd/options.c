/* options — command-line helpers shared by the sweep-worker sub-commands
 * (worker_cmds.h): getopt_long with a table of integer options parsed by
 * numparse, so every command reports a bad value, a missing value and an
 * unknown option in the same words. */
#include <getopt.h>
#include <stdio.h>

#include "numparse.h"
#include "worker_cmds.h"

/* When getopt code C is one of the N options in OPTS, parses VALUE into the
 * int at OUT + its offset: 1, or -1 after reporting a bad value. 0 when C is
 * none of them. */
static int int_option(const char *cmd, const cmd_int_opt *opts, size_t n, int c, const char *value,
                      void *out)
{
    for (size_t i = 0; i < n; i++) {
        if (opts[i].code != c) continue;
        char msg[256];
        int *field = (int *)(void *)((char *)out + opts[i].off);
        if (numparse_int(opts[i].name, value, opts[i].lo, opts[i].hi, field, msg, sizeof msg)) {
            fprintf(stderr, "sweep-worker %s: %s\n", cmd, msg);
            return -1;
        }
        return 1;
    }
    return 0;
}

int cmd_next_option(const char *cmd, int argc, char **argv, const struct option *longopts,
                    const cmd_int_opt *ints, size_t nints, void *out, void (*usage)(FILE *))
{
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int handled = int_option(cmd, ints, nints, c, optarg, out);
        if (handled < 0) return '?';
        if (handled) continue;
        if (c == ':') {
            fprintf(stderr, "sweep-worker %s: %s needs a value\n", cmd, argv[optind - 1]);
            return '?';
        }
        if (c == '?') {
            fprintf(stderr, "sweep-worker %s: unknown option '%s'\n\n", cmd, argv[optind - 1]);
            usage(stderr);
            return '?';
        }
        return c;
    }
    return -1;
}
