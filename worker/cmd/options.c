/* options — the option parser of the sweep-worker sub-commands that take
 * getopt-style options (worker_cmds.h): one table per command says each
 * option's name, kind and field, getopt_long does the syntax, numparse the
 * integers, so every command reports a bad value, a missing value and an
 * unknown option in the same words. */
#include <getopt.h>
#include <stdio.h>

#include "numparse.h"
#include "worker_cmds.h"

#define CMD_OPT_VAL 256 // getopt_long's val of OPTS[i] is CMD_OPT_VAL + i

int cmd_parse_options(const char *cmd, int argc, char **argv, const cmd_opt *opts, size_t n,
                      void *out, void (*usage)(FILE *), bool *help)
{
    struct option longopts[CMD_MAX_OPTS + 2];
    *help = false;
    if (n > CMD_MAX_OPTS) {
        fprintf(stderr, "sweep-worker %s: too many options in the table\n", cmd);
        return WEXIT_SPEC;
    }
    for (size_t i = 0; i < n; i++)
        longopts[i] = (struct option){
            opts[i].name + 2, opts[i].kind == CMD_OPT_FLAG ? no_argument : required_argument, NULL,
            CMD_OPT_VAL + (int)i};
    longopts[n] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n + 1] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            *help = true;
            return 0;
        }
        if (c == ':') {
            fprintf(stderr, "sweep-worker %s: %s needs a value\n", cmd, argv[optind - 1]);
            return WEXIT_SPEC;
        }
        if (c < CMD_OPT_VAL || c >= CMD_OPT_VAL + (int)n) {
            fprintf(stderr, "sweep-worker %s: unknown option '%s'\n\n", cmd, argv[optind - 1]);
            usage(stderr);
            return WEXIT_SPEC;
        }
        const cmd_opt *op = &opts[c - CMD_OPT_VAL];
        void *field = (char *)out + op->off;
        char msg[256];
        if (op->kind == CMD_OPT_STR) {
            *(const char **)field = optarg;
        } else if (op->kind == CMD_OPT_FLAG) {
            *(int *)field = 1;
        } else if (numparse_int(op->name, optarg, op->lo, op->hi, field, msg, sizeof msg)) {
            fprintf(stderr, "sweep-worker %s: %s\n", cmd, msg);
            return WEXIT_SPEC;
        }
    }
    return 0;
}
