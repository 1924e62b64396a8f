/* ctl_args — sweepctl's command line: global options (--socket, --json,
 * --help) before the command, then the command and its operands. Pure: no I/O
 * besides the usage text, so the unit tests can drive it with plain arrays.
 *
 * Decisions where the contract (README.md) is silent: `--socket=PATH` works like `--socket
 * PATH`; `sweepctl help CMD` and `sweepctl CMD --help` print the command's
 * help; a global option written after the command is a usage error that says
 * where to put it; `best` takes -n K before or after JOB and also `-nK`;
 * `report` takes -o FILE and --db FILE (also --db=FILE, -oFILE) before or
 * after JOB. */
#include <limits.h>
#include <string.h>

#include "ctl.h"
#include "errors.h"
#include "numparse.h"

static const struct {
    ctl_command cmd;
    const char *name;
    const char *args; // operands, for usage lines
    const char *help; // one-line description
    int nargs;        // required operands (status takes 0 or 1)
} commands[] = {
    {CTL_CMD_SUBMIT, "submit", "JOB.json", "submit a search job; prints its id and trial count", 1},
    {CTL_CMD_STATUS, "status", "[JOB]", "daemon and job overview, or one job and its trials", 0},
    {CTL_CMD_LIST, "list", "", "list all jobs", 0},
    {CTL_CMD_CANCEL, "cancel", "JOB",
     "cancel a job: queued trials are dropped, running ones stopped", 1},
    {CTL_CMD_BEST, "best", "JOB [-n K]", "the K best completed trials of a job (default 5)", 1},
    {CTL_CMD_TRIAL, "trial", "ID", "one trial: parameters, result and per-epoch metrics", 1},
    {CTL_CMD_WATCH, "watch", "JOB", "follow a job's progress until it ends", 1},
    {CTL_CMD_PING, "ping", "", "check that the daemon answers", 0},
    {CTL_CMD_SHUTDOWN, "shutdown", "", "ask the daemon to checkpoint running trials and exit", 0},
    {CTL_CMD_REPORT, "report", "JOB [-o FILE.html] [--db FILE]",
     "write a job's search as one self-contained HTML page", 1},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

const char *ctl_command_name(ctl_command cmd)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].cmd == cmd) return commands[i].name;
    return "";
}

void ctl_usage(FILE *f, ctl_command cmd)
{
    if (cmd != CTL_CMD_NONE) {
        for (size_t i = 0; i < NCOMMANDS; i++) {
            if (commands[i].cmd != cmd) continue;
            fprintf(f, "usage: sweepctl [--socket PATH] [--json] %s%s%s\n\n%s.\n", commands[i].name,
                    commands[i].args[0] ? " " : "", commands[i].args, commands[i].help);
        }
        if (cmd == CTL_CMD_SUBMIT)
            fprintf(f, "\nThe file is checked for JSON syntax before it is sent; the daemon then\n"
                       "validates the job and refuses it whole, naming the key at fault.\n");
        if (cmd == CTL_CMD_WATCH)
            fprintf(f, "\nOn a terminal the display is redrawn in place: overall progress with an\n"
                       "ETA, one line per running trial and the best result so far. Otherwise\n"
                       "one line per trial start, epoch and end is printed. Exits 0 when the job\n"
                       "ends done or cancelled, 1 when it failed.\n");
        if (cmd == CTL_CMD_REPORT)
            fprintf(f, "\nThe page (default report-JOB.html) holds its charts as inline SVG and\n"
                       "fetches nothing: optimization history, learning curves of the top\n"
                       "trials, parallel coordinates, one scatter per searched parameter,\n"
                       "parameter importance, the chosen model's confusion matrix and test\n"
                       "accuracy, and the failed and pruned trials with their reasons.\n"
                       "The database is read read-only, in one short snapshot, so the daemon is\n"
                       "never held up. Without --db its path is asked of the daemon (the \"db\"\n"
                       "of its status reply, over --socket); give --db FILE when it is not\n"
                       "running, e.g. --db var/sweepd.db. Prints the page's path.\n");
        return;
    }
    fprintf(f, "usage: sweepctl [--socket PATH] [--json] COMMAND [ARGS]\n"
               "\n"
               "The command-line client of sweepd, the hyperparameter search daemon.\n"
               "\n"
               "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char lhs[64];
        snprintf(lhs, sizeof lhs, "%s %s", commands[i].name, commands[i].args);
        if (strlen(lhs) > 20) // too wide for the column: the description goes under it
            fprintf(f, "  %s\n  %-20s %s\n", lhs, "", commands[i].help);
        else
            fprintf(f, "  %-20s %s\n", lhs, commands[i].help);
    }
    fprintf(f, "\n"
               "options (before the command):\n"
               "  --socket PATH   the daemon's socket (default: $SWEEPD_SOCKET, else\n"
               "                  " CTL_DEFAULT_SOCKET ")\n"
               "  --json          print the daemon's raw JSON replies\n"
               "  -h, --help      this text; 'sweepctl help COMMAND' for one command\n"
               "\n"
               "exit status: 0 success, 1 error reply (or, for watch, the job failed),\n"
               "2 usage error, 3 the daemon cannot be reached.\n");
}

/* Parses a positive decimal id into *OUT (numparse wording, ERR_INVALID). */
static int parse_id(const char *s, const char *what, long long *out, char *msg, size_t msglen)
{
    return numparse_long(what, s, 1, LLONG_MAX, out, msg, msglen) ? ERR_INVALID : 0;
}

static int is_global_opt(const char *s)
{
    return !strcmp(s, "--json") || !strcmp(s, "--socket") || !strncmp(s, "--socket=", 9);
}

int ctl_parse_args(ctl_args *a, int argc, char **argv, const char *env_socket, char *msg,
                   size_t msglen)
{
    memset(a, 0, sizeof *a);
    a->socket_path = env_socket && env_socket[0] ? env_socket : CTL_DEFAULT_SOCKET;
    a->limit = CTL_DEFAULT_BEST;
    int i = 1;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--json")) {
            a->json = true;
        } else if (!strcmp(s, "--socket")) {
            if (i + 1 >= argc || !argv[i + 1][0])
                return err_set(msg, msglen, ERR_INVALID, "--socket needs a PATH");
            a->socket_path = argv[++i];
        } else if (!strncmp(s, "--socket=", 9)) {
            if (!s[9]) return err_set(msg, msglen, ERR_INVALID, "--socket needs a PATH");
            a->socket_path = s + 9;
        } else if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            a->help = true;
        } else if (!strcmp(s, "--")) {
            i++;
            break;
        } else if (s[0] == '-' && s[1]) {
            return err_set(msg, msglen, ERR_INVALID, "unknown option '%s'", s);
        } else {
            break;
        }
    }
    if (i >= argc) {
        if (a->help) return 0;
        return err_set(msg, msglen, ERR_INVALID, "no command given");
    }
    const char *name = argv[i++];
    bool help_cmd = false;
    if (!strcmp(name, "help")) {
        a->help = true;
        if (i >= argc) return 0;
        name = argv[i++];
        help_cmd = true;
    }
    size_t ci = 0;
    while (ci < NCOMMANDS && strcmp(commands[ci].name, name))
        ci++;
    if (ci == NCOMMANDS) return err_set(msg, msglen, ERR_INVALID, "unknown command '%s'", name);
    a->cmd = commands[ci].cmd;
    if (help_cmd) return 0;

    /* Operands and command options. */
    const char *operands[2] = {NULL, NULL};
    int nops = 0;
    bool only_operands = false;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (!only_operands && (!strcmp(s, "--help") || !strcmp(s, "-h"))) {
            a->help = true;
            return 0;
        }
        if (!only_operands && !strcmp(s, "--")) {
            only_operands = true;
            continue;
        }
        if (!only_operands && is_global_opt(s))
            return err_set(msg, msglen, ERR_INVALID,
                           "%.*s is a global option: put it before the command, e.g. "
                           "'sweepctl %.*s %s ...'",
                           (int)strcspn(s, "="), s, (int)strcspn(s, "="), s, name);
        if (!only_operands && a->cmd == CTL_CMD_BEST && !strncmp(s, "-n", 2)) {
            const char *v = s[2] ? s + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) return err_set(msg, msglen, ERR_INVALID, "-n needs a number K");
            if (numparse_int("-n", v, 1, CTL_MAX_BEST, &a->limit, msg, msglen)) return ERR_INVALID;
            continue;
        }
        if (!only_operands && a->cmd == CTL_CMD_REPORT) {
            const char **dst = NULL;
            const char *v = NULL;
            if (!strcmp(s, "-o") || !strcmp(s, "--db")) {
                dst = s[1] == 'o' ? &a->output : &a->db;
                v = i + 1 < argc ? argv[++i] : NULL;
            } else if (!strncmp(s, "-o", 2) || !strncmp(s, "--db=", 5)) {
                dst = s[1] == 'o' ? &a->output : &a->db;
                v = s + (s[1] == 'o' ? 2 : 5);
            }
            if (dst) {
                if (!v || !v[0])
                    return err_set(msg, msglen, ERR_INVALID, "%s needs a FILE",
                                   dst == &a->output ? "-o" : "--db");
                *dst = v;
                continue;
            }
        }
        if (!only_operands && s[0] == '-' && s[1])
            return err_set(msg, msglen, ERR_INVALID, "unknown option '%s' for %s", s, name);
        if (nops == 2)
            return err_set(msg, msglen, ERR_INVALID, "too many arguments for %s: '%s'", name, s);
        operands[nops++] = s;
    }
    int max_ops = (a->cmd == CTL_CMD_STATUS) ? 1 : commands[ci].nargs;
    if (nops < commands[ci].nargs)
        return err_set(msg, msglen, ERR_INVALID, "%s needs %s", name, commands[ci].args);
    if (nops > max_ops)
        return err_set(msg, msglen, ERR_INVALID, "too many arguments for %s: '%s'", name,
                       operands[max_ops]);
    switch (a->cmd) {
    case CTL_CMD_SUBMIT:
        a->file = operands[0];
        return 0;
    case CTL_CMD_STATUS:
        return nops ? parse_id(operands[0], "JOB", &a->id, msg, msglen) : 0;
    case CTL_CMD_CANCEL:
    case CTL_CMD_BEST:
    case CTL_CMD_WATCH:
    case CTL_CMD_REPORT:
        return parse_id(operands[0], "JOB", &a->id, msg, msglen);
    case CTL_CMD_TRIAL:
        return parse_id(operands[0], "trial ID", &a->id, msg, msglen);
    default:
        return 0;
    }
}
