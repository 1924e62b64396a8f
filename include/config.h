/* config — sweepd settings: defaults, the `key = value` config file, and the
 * command-line flags that override it.
 *
 * Precedence, lowest first: built-in defaults, the config file (--config FILE),
 * the environment variable SWEEPD_WORKER (worker path only, for tests), then
 * command-line flags. Every key is documented in etc/sweepd.conf. Relative
 * paths in the file are taken relative to the current directory, like flags;
 * config_finish() turns them into absolute paths before the daemon detaches. */
#ifndef SWEEP_CONFIG_H
#define SWEEP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "log.h"

#define CONFIG_MAX_UIDS 64

/* Where workers run (include/launcher.h): here, or as Slurm steps through srun. */
typedef enum { LAUNCH_LOCAL = 0, LAUNCH_SLURM } launcher_kind;

typedef struct {
    char *socket_path; // Unix socket to listen on (owned)
    char *db_path;     // SQLite database (owned)
    char *state_dir;   // trials/<id>/, logs/, cache/, sweepd.pid live here (owned)
    char *sql_dir;     // directory holding schema.sql and migrations/ (owned)
    char *worker;      // sweep-worker executable (owned)
    char *log_file;    // daemon log, NULL = stderr (foreground) or state_dir/sweepd.log (owned)
    char *pid_file;    // pid file when daemonized, NULL = state_dir/sweepd.pid (owned)
    int workers;       // concurrent worker processes (slots), >= 1; 0 = derive from cores
    int threads_per_worker;       // compute threads each worker uses, >= 1
    char *blas_core;              // OpenBLAS kernel policy passed to workers: "inherit", "auto"
                                  // or a kernel name (blas_policy.h) (owned)
    bool foreground;              // stay attached instead of daemonizing
    log_level level;              // log level
    double kill_grace;            // seconds between SIGTERM and SIGKILL for a worker
    double default_trial_timeout; // seconds; job's trial_timeout when absent, 0 = none
    int default_max_retries;      // job's max_retries when absent
    double tick;                  // seconds between runs of the periodic timer
    int db_busy_timeout_ms;       // SQLite busy timeout while the loop runs (kept short)
    size_t max_write_queue;       // bytes of unsent replies per connection before it is dropped
    int max_connections;          // simultaneous client connections
    double idle_timeout;          // seconds a connection may go without a complete request line
                                  // (watchers exempt) before it is closed; 0 = never
    int socket_mode;              // permission bits of the socket file (0660)
    uid_t allow_uids[CONFIG_MAX_UIDS]; // extra uids allowed besides the daemon's own and root
    int n_allow_uids;                  // entries in allow_uids; 0 = anyone who can open the socket
    bool has_socket_group;             // socket_group was set: chown the socket to it after bind
    gid_t socket_group;                // its gid
    char *socket_group_name;           // the value as configured, for messages (owned)
    char **data_roots;                 // directories job data/weights must lie in (owned strings,
                       // made absolute and resolved by config_finish); NULL = anywhere
    int n_data_roots;          // entries in data_roots
    size_t cache_max_mb;       // bound of the shared feature cache in state_dir/cache/features,
                               // MiB, passed in each trial spec; default
                               // config_default_cache_mb(), 0 = no feature cache (README.md
                               // "Feature cache")
    launcher_kind launcher;    // `launcher`: local (default) or slurm
    char *slurm_partition;     // srun --partition, NULL = the cluster's default (owned)
    char *slurm_account;       // srun --account, NULL = none (owned)
    char *slurm_mem_per_trial; // srun --mem, e.g. "8G"; NULL = the partition's default (owned)
    char *slurm_extra_args;    // more srun options, split at blanks (no quoting); NULL = none
                               // (owned)
} sweepd_config;

/* Fills C with the defaults for running in a checkout: ./var/sweepd.sock,
 * ./var/sweepd.db, ./var, the sweep-worker next to the running binary. */
void config_defaults(sweepd_config *c);
void config_free(sweepd_config *c);

/* Applies one KEY = VALUE setting; WHERE (e.g. "sweepd.conf:12") prefixes
 * messages. ERR_UNKNOWN_KEY or ERR_INVALID with the reason in msg. */
int config_set(sweepd_config *c, const char *key, const char *value, const char *where, char *msg,
               size_t msglen);
/* Reads a config file: `key = value` lines, `#` comments, blank lines. */
int config_load_file(sweepd_config *c, const char *path, char *msg, size_t msglen);
/* Parses the command line: finds --config first and loads it, then applies
 * SWEEPD_WORKER and the flags. Sets *want_help for --help/-h. */
int config_from_args(sweepd_config *c, int argc, char **argv, bool *want_help, char *msg,
                     size_t msglen);
/* Resolves relative paths to absolute ones and fills derived defaults
 * (workers from cores, log/pid files). */
int config_finish(sweepd_config *c, char *msg, size_t msglen);
/* The number of CPUs this process may run on (its affinity mask), >= 1: the
 * default for `workers` is this divided by threads_per_worker. */
long config_usable_cpus(void);
/* cache_max_mb's default: a quarter of physical memory, in MiB (an entry
 * is mapped while its trials run, so the bound keeps the ones in use within
 * what the page cache can hold). */
size_t config_default_cache_mb(void);
/* The data_roots as one string for messages ("/srv/data, /srv/models"). */
void config_roots_text(const sweepd_config *c, char *buf, size_t n);
/* True when UID may use the daemon (root, the daemon's uid, or listed). */
bool config_uid_allowed(const sweepd_config *c, uid_t uid);
/* The usage text for --help. */
const char *config_usage(void);

#endif
