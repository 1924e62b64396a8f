/* config — sweepd settings from defaults, a `key = value` file and flags.
 *
 * The file format is deliberately small: one `key = value` per line, `#`
 * starts a comment (whole line or after whitespace), surrounding blanks are
 * trimmed, values may be wrapped in double quotes. Unknown keys are errors
 * naming file and line, so a typo never silently falls back to a default. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blas_policy.h"
#include "errors.h"
#include "numparse.h"

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void replace(char **slot, const char *v)
{
    free(*slot);
    *slot = xstrdup(v);
}

/* Directory of the running executable into BUF ("" when unknown). */
static void exe_dir(char *buf, size_t n)
{
    char p[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", p, sizeof p - 1);
    buf[0] = 0;
    if (k <= 0) return;
    p[k] = 0;
    char *slash = strrchr(p, '/');
    if (slash) *slash = 0;
    snprintf(buf, n, "%s", p);
}

/* The keys whose value is a path: where it goes; an empty value is refused
 * for a REQUIRED one and resets an optional one to its derived default. */
static const struct {
    const char *key; // config key
    size_t off;      // offsetof the char * field in sweepd_config
    bool required;   // "" is an error rather than "use the default"
} path_keys[] = {
    {"socket", offsetof(sweepd_config, socket_path), true},
    {"db", offsetof(sweepd_config, db_path), true},
    {"state_dir", offsetof(sweepd_config, state_dir), true},
    {"sql_dir", offsetof(sweepd_config, sql_dir), true},
    {"worker", offsetof(sweepd_config, worker), true},
    {"log_file", offsetof(sweepd_config, log_file), false},
    {"pid_file", offsetof(sweepd_config, pid_file), false},
};

/* The field of C that path key I of path_keys sets. */
static char **path_slot(sweepd_config *c, size_t i)
{
    return (char **)(void *)((char *)c + path_keys[i].off);
}

void config_defaults(sweepd_config *c)
{
    memset(c, 0, sizeof *c);
    /* socket_path and db_path stay NULL until config_finish: unless a flag
     * or the config file names them, they follow the state directory. */
    c->state_dir = xstrdup("var");
    char dir[PATH_MAX], buf[PATH_MAX + 64];
    exe_dir(dir, sizeof dir);
    snprintf(buf, sizeof buf, "%s/sweep-worker", dir[0] ? dir : ".");
    c->worker = xstrdup(buf);
    /* Installed layout first (<prefix>/bin/sweepd, <prefix>/share/sweepd/sql),
     * then the checkout the binary was built from. */
    struct stat st;
    char probe[PATH_MAX + 128];
    snprintf(buf, sizeof buf, "%s/../share/sweepd/sql", dir[0] ? dir : ".");
    snprintf(probe, sizeof probe, "%s/schema.sql", buf);
    if (stat(probe, &st) == 0 || stat(SWEEP_SRCDIR "/sql/schema.sql", &st) != 0)
        c->sql_dir = xstrdup(buf);
    else
        c->sql_dir = xstrdup(SWEEP_SRCDIR "/sql");
    c->workers = 0;
    c->threads_per_worker = 1;
    c->blas_core = xstrdup("inherit");
    c->foreground = false;
    c->level = LOGL_INFO;
    c->kill_grace = 10.0;
    c->default_trial_timeout = 0;
    c->default_max_retries = 1;
    c->tick = 0.1;
    c->db_busy_timeout_ms = 20;
    c->max_write_queue = 4u << 20;
    c->max_connections = 256;
    c->idle_timeout = 60;
    c->socket_mode = 0660;
    c->cache_max_mb = config_default_cache_mb();
}

size_t config_default_cache_mb(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0) return 1024;
    return (size_t)pages * (size_t)psz / 4 / 1048576;
}

void config_free(sweepd_config *c)
{
    for (size_t i = 0; i < sizeof path_keys / sizeof path_keys[0]; i++)
        free(*path_slot(c, i));
    free(c->blas_core);
    free(c->socket_group_name);
    for (int i = 0; i < c->n_data_roots; i++)
        free(c->data_roots[i]);
    free(c->data_roots);
    free(c->slurm_partition);
    free(c->slurm_account);
    free(c->slurm_mem_per_trial);
    free(c->slurm_extra_args);
    memset(c, 0, sizeof *c);
}

static int parse_bool(const char *v, bool *out)
{
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1") ||
        !strcasecmp(v, "on")) {
        *out = true;
        return 0;
    }
    if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0") ||
        !strcasecmp(v, "off")) {
        *out = false;
        return 0;
    }
    return -1;
}

/* allow_uids: numeric uids separated by commas; empty = none. */
static int parse_uids(sweepd_config *c, const char *name, const char *v, char *msg, size_t msglen)
{
    long long uids[CONFIG_MAX_UIDS];
    size_t n = 0;
    int rc = *v ? numparse_list(name, v, 0, 0x7fffffff, uids, CONFIG_MAX_UIDS, &n, msg, msglen) : 0;
    if (rc) return rc;
    for (size_t i = 0; i < n; i++)
        c->allow_uids[i] = (uid_t)uids[i];
    c->n_allow_uids = (int)n;
    return 0;
}

/* An optional string setting: "" resets it to none. */
static int set_string(char **slot, const char *v)
{
    replace(slot, *v ? v : NULL);
    return *v && !*slot ? ERR_NOMEM : 0;
}

/* socket_group: a group name or a numeric gid, resolved by config_finish
 * (so a file naming a group loads anywhere; the daemon checks it at start). */
static int parse_group(sweepd_config *c, const char *v)
{
    c->has_socket_group = *v != 0;
    replace(&c->socket_group_name, *v ? v : NULL);
    return *v && !c->socket_group_name ? ERR_NOMEM : 0;
}

/* Resolves socket_group_name into socket_group. */
static int resolve_group(sweepd_config *c, char *msg, size_t msglen)
{
    const char *v = c->socket_group_name;
    long long g;
    int rc = numparse_long("socket_group", v, 0, 0x7ffffffe, &g, msg, msglen);
    if (rc == 0) {
        c->socket_group = (gid_t)g;
        return 0;
    }
    if (rc != ERR_INVALID) return ERR_INVALID; // a number, but no gid: msg says why
    errno = 0;
    struct group *gr = getgrnam(v);
    if (!gr)
        return err_set(msg, msglen, ERR_NOTFOUND,
                       "socket_group: unknown group \"%s\" (not in the group database; give an"
                       " existing group name or a numeric gid)",
                       v);
    c->socket_group = gr->gr_gid;
    return 0;
}

/* data_roots: comma-separated directories (resolved later by config_finish). */
static int parse_roots(sweepd_config *c, const char *v)
{
    for (int i = 0; i < c->n_data_roots; i++)
        free(c->data_roots[i]);
    free(c->data_roots);
    c->data_roots = NULL;
    c->n_data_roots = 0;
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p) break;
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        char **nr = realloc(c->data_roots, (size_t)(c->n_data_roots + 1) * sizeof *nr);
        if (!nr) return ERR_NOMEM;
        c->data_roots = nr;
        if (!(c->data_roots[c->n_data_roots] = strndup(p, n))) return ERR_NOMEM;
        c->n_data_roots++;
        p += n;
    }
    return 0;
}

void config_roots_text(const sweepd_config *c, char *buf, size_t n)
{
    if (!n) return;
    buf[0] = 0;
    for (int i = 0; i < c->n_data_roots; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", i ? ", " : "", c->data_roots[i]);
    }
}

/* The keys whose value is a number: where it goes, its type and range. */
typedef enum { NUM_INT, NUM_SIZE, NUM_DOUBLE } num_kind;
static const struct {
    const char *key; // config key
    num_kind kind;   // type of the field: int, size_t or double
    size_t off;      // offsetof the field in sweepd_config
    double lo, hi;   // accepted range, inclusive
} num_keys[] = {
    {"workers", NUM_INT, offsetof(sweepd_config, workers), 0, 4096}, // 0 = one per core
    {"threads_per_worker", NUM_INT, offsetof(sweepd_config, threads_per_worker), 1, 1024},
    {"kill_grace", NUM_DOUBLE, offsetof(sweepd_config, kill_grace), 0, 86400},
    {"trial_timeout", NUM_DOUBLE, offsetof(sweepd_config, default_trial_timeout), 0, 1e9},
    {"max_retries", NUM_INT, offsetof(sweepd_config, default_max_retries), 0, 1000},
    {"tick", NUM_DOUBLE, offsetof(sweepd_config, tick), 0.01, 60},
    {"db_busy_timeout_ms", NUM_INT, offsetof(sweepd_config, db_busy_timeout_ms), 0, 60000},
    {"max_write_queue", NUM_SIZE, offsetof(sweepd_config, max_write_queue), 4096, 4294967296.0},
    {"max_connections", NUM_INT, offsetof(sweepd_config, max_connections), 1, 65536},
    {"idle_timeout", NUM_DOUBLE, offsetof(sweepd_config, idle_timeout), 0, 1e9}, // 0 = never
    {"cache_max_mb", NUM_SIZE, offsetof(sweepd_config, cache_max_mb), 0, 1099511627776.0},
};

/* Parses number key I of num_keys from VALUE into C; NAME names it in msg. */
static int set_number(sweepd_config *c, size_t i, const char *name, const char *value, char *msg,
                      size_t msglen)
{
    char *field = (char *)c + num_keys[i].off;
    double lo = num_keys[i].lo, hi = num_keys[i].hi;
    switch (num_keys[i].kind) {
    case NUM_INT:
        return numparse_int(name, value, (int)lo, (int)hi, (int *)(void *)field, msg, msglen);
    case NUM_SIZE:
        return numparse_size(name, value, (size_t)lo, (size_t)hi, (size_t *)(void *)field, msg,
                             msglen);
    case NUM_DOUBLE:
        return numparse_double(name, value, lo, hi, (double *)(void *)field, msg, msglen);
    }
    return ERR_INTERNAL;
}

/* The value checks of config_set; messages start with NAME. */
static int set_value(sweepd_config *c, const char *key, const char *name, const char *value,
                     char *msg, size_t msglen)
{
    bool b;
    log_level lv;
    unsigned mode;
#define BAD(what)                                                                                  \
    return err_set(msg, msglen, ERR_INVALID, "%s: expected %s, got \"%s\"", name, what, value)
    for (size_t i = 0; i < sizeof path_keys / sizeof path_keys[0]; i++) {
        if (strcmp(key, path_keys[i].key)) continue;
        if (path_keys[i].required && !*value) BAD("a path");
        char **slot = path_slot(c, i);
        replace(slot, *value ? value : NULL);
        return *value && !*slot ? ERR_NOMEM : 0;
    }
    for (size_t i = 0; i < sizeof num_keys / sizeof num_keys[0]; i++)
        if (!strcmp(key, num_keys[i].key)) return set_number(c, i, name, value, msg, msglen);
    if (!strcmp(key, "blas_core")) {
        if (blas_policy_check(value, NULL, 0) < 0)
            BAD("inherit, auto or an OpenBLAS kernel name (Haswell, Zen, SkylakeX, Cooperlake, "
                "...)");
        const char *canon = blas_core_canonical(value);
        replace(&c->blas_core, canon ? canon : value);
    } else if (!strcmp(key, "foreground")) {
        if (parse_bool(value, &b)) BAD("true or false");
        c->foreground = b;
    } else if (!strcmp(key, "log_level")) {
        if (log_level_parse(value, &lv)) BAD("one of debug, info, warn, error, off");
        c->level = lv;
    } else if (!strcmp(key, "socket_mode")) {
        int rc = numparse_octal(name, value, 0777, &mode, msg, msglen);
        if (rc) return rc;
        c->socket_mode = (int)mode;
    } else if (!strcmp(key, "allow_uids")) {
        return parse_uids(c, name, value, msg, msglen);
    } else if (!strcmp(key, "socket_group")) {
        return parse_group(c, value);
    } else if (!strcmp(key, "data_roots")) {
        return parse_roots(c, value);
    } else if (!strcmp(key, "launcher")) {
        if (strcmp(value, "local") && strcmp(value, "slurm")) BAD("local or slurm");
        c->launcher = strcmp(value, "slurm") ? LAUNCH_LOCAL : LAUNCH_SLURM;
    } else if (!strcmp(key, "slurm_mem_per_trial")) {
        size_t digits = strspn(value, "0123456789");
        if (*value && (!digits || strlen(value) > digits + 1 ||
                       (value[digits] && !strchr("KMGTkmgt", value[digits]))))
            BAD("a size for srun --mem: a whole number of megabytes, or one with a K, M, G or T"
                " suffix (8G)");
        return set_string(&c->slurm_mem_per_trial, value);
    } else if (!strcmp(key, "slurm_partition")) {
        return set_string(&c->slurm_partition, value);
    } else if (!strcmp(key, "slurm_account")) {
        return set_string(&c->slurm_account, value);
    } else if (!strcmp(key, "slurm_extra_args")) {
        return set_string(&c->slurm_extra_args, value);
    } else {
        return ERR_UNKNOWN_KEY;
    }
#undef BAD
    return 0;
}

int config_set(sweepd_config *c, const char *key, const char *value, const char *where, char *msg,
               size_t msglen)
{
    /* Flags are named by themselves ("--workers: ..."), file lines as "file:N: key: ...". */
    char reason[512] = "";
    bool is_flag = where[0] == '-';
    int rc = set_value(c, key, is_flag ? where : key, value, reason, sizeof reason);
    if (rc == ERR_UNKNOWN_KEY)
        return err_set(msg, msglen, rc, "%s: unknown key \"%s\"", where, key);
    if (rc == ERR_NOMEM) return err_set(msg, msglen, rc, "%s: out of memory", where);
    if (rc)
        return err_set(msg, msglen, ERR_INVALID, "%s%s%s", is_flag ? "" : where,
                       is_flag ? "" : ": ", reason);
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

int config_load_file(sweepd_config *c, const char *path, char *msg, size_t msglen)
{
    FILE *f = fopen(path, "r");
    if (!f) return err_set_errno(msg, msglen, ERR_IO, errno, "cannot open config %s", path);
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char where[PATH_MAX + 32];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            rc = err_set(msg, msglen, ERR_INVALID, "%s: line too long", where);
            break;
        }
        /* Strip a comment: '#' at the start or after a blank, outside quotes. */
        bool inq = false;
        for (char *p = line; *p; p++) {
            if (*p == '"') inq = !inq;
            if (*p == '#' && !inq && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
                *p = 0;
                break;
            }
        }
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = err_set(msg, msglen, ERR_INVALID, "%s: expected `key = value`, got \"%s\"", where,
                         s);
            break;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        size_t vn = strlen(val);
        if (vn >= 2 && val[0] == '"' && val[vn - 1] == '"') {
            val[vn - 1] = 0;
            val++;
        }
        if (!*key) {
            rc = err_set(msg, msglen, ERR_INVALID, "%s: missing key before '='", where);
            break;
        }
        rc = config_set(c, key, val, where, msg, msglen);
        if (rc) break;
    }
    fclose(f);
    return rc;
}

const char *config_usage(void)
{
    return "usage: sweepd [--config FILE] [--socket PATH] [--db PATH] [--state-dir DIR]\n"
           "              [--workers N] [--threads-per-worker T] [--foreground]\n"
           "              [--log-level LEVEL] [--blas-core inherit|auto|NAME]\n"
           "              [--launcher local|slurm]\n"
           "\n"
           "Hyperparameter search daemon: accepts jobs on a Unix socket, runs sweep-worker\n"
           "trials and records everything in SQLite.\n"
           "\n"
           "  --config FILE            read `key = value` settings (see etc/sweepd.conf)\n"
           "  --socket PATH            Unix socket to listen on (default DIR/sweepd.sock)\n"
           "  --db PATH                SQLite database (default DIR/sweepd.db)\n"
           "  --state-dir DIR          trial outputs, logs, pid file, and the socket and\n"
           "                           database unless named (default var)\n"
           "  --workers N              concurrent trials (default: cores / threads per worker)\n"
           "  --threads-per-worker T   compute threads per trial (default 1)\n"
           "  --foreground             stay attached, log to stderr (for systemd)\n"
           "  --log-level LEVEL        debug, info, warn, error or off (default info)\n"
           "  --blas-core POLICY       OpenBLAS kernel for workers: inherit (keep\n"
           "                           OPENBLAS_CORETYPE, default), auto (best for this CPU)\n"
           "                           or a kernel name such as SkylakeX\n"
           "  --launcher KIND          local (default): workers run here; slurm: each trial\n"
           "                           runs as an srun step (config keys slurm_partition,\n"
           "                           slurm_account, slurm_mem_per_trial, slurm_extra_args)\n"
           "  --help                   show this text\n"
           "\n"
           "Flags override the config file. SWEEPD_WORKER overrides the `worker` key.\n"
           "Client connections that send no complete request for idle_timeout seconds\n"
           "(config key, default 60, 0 = never) are closed; `watch` streams are exempt.\n"
           "Signals: SIGTERM/SIGINT stop gracefully (running trials checkpoint and are\n"
           "resumed on the next start), SIGHUP reopens the log file.\n";
}

int config_from_args(sweepd_config *c, int argc, char **argv, bool *want_help, char *msg,
                     size_t msglen)
{
    enum {
        O_CONFIG = 256,
        O_SOCKET,
        O_DB,
        O_STATE,
        O_WORKERS,
        O_THREADS,
        O_FG,
        O_LEVEL,
        O_BLAS,
        O_LAUNCHER,
        O_HELP
    };
    static const struct option opts[] = {
        {"config", required_argument, NULL, O_CONFIG},
        {"socket", required_argument, NULL, O_SOCKET},
        {"db", required_argument, NULL, O_DB},
        {"state-dir", required_argument, NULL, O_STATE},
        {"workers", required_argument, NULL, O_WORKERS},
        {"threads-per-worker", required_argument, NULL, O_THREADS},
        {"foreground", no_argument, NULL, O_FG},
        {"log-level", required_argument, NULL, O_LEVEL},
        {"blas-core", required_argument, NULL, O_BLAS},
        {"launcher", required_argument, NULL, O_LAUNCHER},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    *want_help = false;
    const char *config_path = NULL;
    /* Pass 1: --config and --help, and syntax errors. */
    opterr = 0;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == O_CONFIG)
            config_path = optarg;
        else if (o == O_HELP || o == 'h')
            *want_help = true;
        else if (o == '?') {
            if (optopt)
                return err_set(msg, msglen, ERR_INVALID, "option -%c: unknown or missing its value",
                               optopt);
            return err_set(msg, msglen, ERR_INVALID, "%s: unknown option or missing value",
                           argv[optind - 1]);
        }
    }
    if (optind < argc)
        return err_set(msg, msglen, ERR_INVALID, "unexpected argument \"%s\"", argv[optind]);
    if (*want_help) return 0;
    int rc;
    if (config_path && (rc = config_load_file(c, config_path, msg, msglen))) return rc;
    const char *ew = getenv("SWEEPD_WORKER");
    if (ew && *ew) replace(&c->worker, ew);
    /* Pass 2: everything else overrides the file. */
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *key = NULL;
        switch (o) {
        case O_SOCKET:
            key = "socket";
            break;
        case O_DB:
            key = "db";
            break;
        case O_STATE:
            key = "state_dir";
            break;
        case O_WORKERS:
            key = "workers";
            break;
        case O_THREADS:
            key = "threads_per_worker";
            break;
        case O_LEVEL:
            key = "log_level";
            break;
        case O_BLAS:
            key = "blas_core";
            break;
        case O_LAUNCHER:
            key = "launcher";
            break;
        case O_FG:
            c->foreground = true;
            break;
        default:
            break;
        }
        if (key) {
            char where[64];
            snprintf(where, sizeof where, "--%s", opts[o - O_CONFIG].name);
            if ((rc = config_set(c, key, optarg, where, msg, msglen))) return rc;
        }
    }
    return 0;
}

/* Makes *P absolute against the current directory. */
static int absolutize(char **p, char *msg, size_t msglen)
{
    if (!*p || (*p)[0] == '/') return 0;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return err_set_errno(msg, msglen, ERR_IO, errno, "getcwd");
    const char *rel = *p;
    if (rel[0] == '.' && rel[1] == '/') rel += 2;
    size_t n = strlen(cwd) + strlen(rel) + 2;
    char *abs = malloc(n);
    if (!abs) return ERR_NOMEM;
    snprintf(abs, n, "%s/%s", cwd, rel);
    free(*p);
    *p = abs;
    return 0;
}

long config_usable_cpus(void)
{
    /* The CPUs this process may run on (taskset, cgroup cpusets), not the
     * machine's: a daemon pinned to one core fills that core only. */
    cpu_set_t set;
    long n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n < 1) n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n;
}

int config_finish(sweepd_config *c, char *msg, size_t msglen)
{
    int rc;
    /* The socket and the database live in the state directory unless named
     * (`--state-dir /srv/x` alone gives /srv/x/sweepd.sock, /srv/x/sweepd.db). */
    char **in_state[] = {&c->socket_path, &c->db_path};
    const char *names[] = {"sweepd.sock", "sweepd.db"};
    for (size_t i = 0; i < 2; i++) {
        if (*in_state[i]) continue;
        size_t n = strlen(c->state_dir) + 16;
        if (!(*in_state[i] = malloc(n))) return ERR_NOMEM;
        snprintf(*in_state[i], n, "%s/%s", c->state_dir, names[i]);
    }
    char **paths[] = {&c->socket_path, &c->db_path,  &c->state_dir,
                      &c->sql_dir,     &c->log_file, &c->pid_file};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if ((rc = absolutize(paths[i], msg, msglen))) return rc;
    if (c->has_socket_group && (rc = resolve_group(c, msg, msglen))) return rc;
    /* data_roots: existing directories, compared by their resolved paths. */
    for (int i = 0; i < c->n_data_roots; i++) {
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(c->data_roots[i], real))
            return err_set_errno(msg, msglen, ERR_NOTFOUND, errno,
                                 "data_roots: cannot resolve \"%s\"", c->data_roots[i]);
        if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
            return err_set(msg, msglen, ERR_INVALID, "data_roots: %s is not a directory",
                           c->data_roots[i]);
        replace(&c->data_roots[i], real);
        if (!c->data_roots[i]) return ERR_NOMEM;
    }
    /* The worker: a bare name is looked up in PATH by execvp at spawn time. */
    if (strchr(c->worker, '/') && (rc = absolutize(&c->worker, msg, msglen))) return rc;
    if (c->workers == 0) {
        long cores = config_usable_cpus();
        c->workers = (int)(cores / c->threads_per_worker);
        if (c->workers < 1) c->workers = 1;
    }
    if (!c->pid_file) {
        size_t n = strlen(c->state_dir) + 16;
        c->pid_file = malloc(n);
        if (!c->pid_file) return ERR_NOMEM;
        snprintf(c->pid_file, n, "%s/sweepd.pid", c->state_dir);
    }
    if (!c->log_file && !c->foreground) {
        size_t n = strlen(c->state_dir) + 16;
        c->log_file = malloc(n);
        if (!c->log_file) return ERR_NOMEM;
        snprintf(c->log_file, n, "%s/sweepd.log", c->state_dir);
    }
    return 0;
}

bool config_uid_allowed(const sweepd_config *c, uid_t uid)
{
    if (uid == 0 || uid == geteuid()) return true;
    if (c->n_allow_uids == 0) return true;
    for (int i = 0; i < c->n_allow_uids; i++)
        if (c->allow_uids[i] == uid) return true;
    return false;
}
