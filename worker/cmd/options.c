/* options — command-line helpers shared by the sweep-worker sub-commands
 * (worker_cmds.h): a table of integer options parsed with numparse, so every
 * command names a bad value in the same words. */
#include <stdio.h>

#include "numparse.h"
#include "worker_cmds.h"

int cmd_int_option(const char *cmd, const cmd_int_opt *opts, size_t n, int c, const char *value,
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
