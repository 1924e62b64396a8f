/* migrate — creates or upgrades the database schema from the SQL files in
 * sql/ (rule in include/migrate.h and at the top of sql/schema.sql).
 *
 * Each file runs statement by statement through sqlite3_prepare_v2 rather than
 * sqlite3_exec so that an error can name the line of the failing statement.
 * The file and the user_version update share one transaction: either the
 * whole migration lands together with its version number, or nothing does. */
#include "migrate.h"

#include "errors.h"
#include "fileio.h"
#include "grow.h"
#include "log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQL_FILE_MAX (16u << 20) // refuse absurdly large SQL files

typedef struct {
    int version; // NNNN of the file name
    char *name;  // file name, e.g. "0002_add_host.sql" (owned)
} migration;

typedef struct {
    migration *v; // sorted by version (owned)
    size_t n;     // entries used
} migration_list;

static void list_free(migration_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int cmp_migration(const void *a, const void *b)
{
    const migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* Parses "NNNN_description.sql": returns the version (> 0), or -1. */
static int parse_name(const char *name)
{
    const char *p = name;
    long v = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (*p - '0');
        if (++digits > 9) return -1;
        p++;
    }
    if (digits == 0 || v <= 0 || *p != '_') return -1;
    p++;
    size_t rest = strlen(p);
    if (rest <= 4 || strcmp(p + rest - 4, ".sql") != 0) return -1;
    return (int)v;
}

static int ends_with_sql(const char *name)
{
    size_t l = strlen(name);
    return l >= 4 && strcmp(name + l - 4, ".sql") == 0;
}

/* Lists SQL_DIR/migrations, checking names and duplicates. */
static int list_migrations(const char *sql_dir, migration_list *out, char *msg, size_t msglen)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/migrations", sql_dir);
    out->v = NULL;
    out->n = 0;
    DIR *d = opendir(dir);
    if (!d) return err_set_errno(msg, msglen, ERR_IO, errno, "cannot open directory %s", dir);
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !ends_with_sql(e->d_name)) continue;
        int v = parse_name(e->d_name);
        if (v < 0) {
            rc = err_set(msg, msglen, ERR_INVALID,
                         "%s/%s: migration file names must look like NNNN_description.sql", dir,
                         e->d_name);
            goto fail;
        }
        migration *nv = grow_array(out->v, out->n + 1, &cap, sizeof *nv, 16);
        if (!nv) {
            rc = err_set(msg, msglen, ERR_NOMEM, "out of memory listing %s", dir);
            goto fail;
        }
        out->v = nv;
        out->v[out->n].version = v;
        out->v[out->n].name = strdup(e->d_name);
        if (!out->v[out->n].name) {
            rc = err_set(msg, msglen, ERR_NOMEM, "out of memory listing %s", dir);
            goto fail;
        }
        out->n++;
    }
    closedir(d);
    d = NULL;
    if (out->n) qsort(out->v, out->n, sizeof *out->v, cmp_migration);
    for (size_t i = 1; i < out->n; i++) {
        if (out->v[i].version == out->v[i - 1].version) {
            rc = err_set(msg, msglen, ERR_INVALID, "%s: %s and %s have the same number %d", dir,
                         out->v[i - 1].name, out->v[i].name, out->v[i].version);
            goto fail;
        }
    }
    return 0;
fail:
    if (d) closedir(d);
    list_free(out);
    return rc;
}

int migrate_latest_version(const char *sql_dir, int *out, char *msg, size_t msglen)
{
    migration_list l;
    int rc = list_migrations(sql_dir, &l, msg, msglen);
    if (rc) return rc;
    *out = l.n ? l.v[l.n - 1].version : 0;
    list_free(&l);
    return 0;
}

/* The integer in the first column of the first row of SQL; WHAT names what
 * is read in the message ("cannot read WHAT: ..."). */
static int query_int(sqlite3 *db, const char *sql, const char *what, int *out, char *msg,
                     size_t msglen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        int e = err_set(msg, msglen, ERR_DB, "cannot read %s: %s", what, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return e;
    }
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

int migrate_db_version(sqlite3 *db, int *out, char *msg, size_t msglen)
{
    return query_int(db, "PRAGMA user_version", "user_version", out, msg, msglen);
}

/* Number of schema objects (tables, views, indexes, triggers). */
static int count_objects(sqlite3 *db, int *out, char *msg, size_t msglen)
{
    return query_int(db, "SELECT count(*) FROM sqlite_master", "the schema", out, msg, msglen);
}

static int line_of(const char *text, const char *at)
{
    int line = 1;
    for (const char *p = text; p < at; p++)
        if (*p == '\n') line++;
    return line;
}

/* Runs every statement of SQL (the text of file PATH). */
static int exec_script(sqlite3 *db, const char *path, const char *sql, char *msg, size_t msglen)
{
    const char *p = sql;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p) break;
        sqlite3_stmt *st = NULL;
        const char *tail = NULL;
        int rc = sqlite3_prepare_v2(db, p, -1, &st, &tail);
        if (rc != SQLITE_OK) {
            return err_set(msg, msglen, ERR_DB, "%s line %d: %s", path, line_of(sql, p),
                           sqlite3_errmsg(db));
        }
        if (!st) { /* only comments or whitespace left */
            p = tail;
            continue;
        }
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        }
        if (rc != SQLITE_DONE) {
            int e = err_set(msg, msglen, ERR_DB, "%s line %d: %s", path, line_of(sql, p),
                            sqlite3_errmsg(db));
            sqlite3_finalize(st);
            return e;
        }
        sqlite3_finalize(st);
        p = tail;
    }
    return 0;
}

static int exec_simple(sqlite3 *db, const char *sql, const char *what, char *msg, size_t msglen)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        int e = err_set(msg, msglen, ERR_DB, "%s: %s", what, err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return e;
    }
    return 0;
}

/* Runs file PATH in one transaction. With SET_VERSION > 0 the transaction also
 * sets user_version to it; with EXPECT_VERSION > 0 the file must leave
 * user_version at that value (schema.sql sets its own). */
static int run_file(sqlite3 *db, const char *path, int set_version, int expect_version, char *msg,
                    size_t msglen)
{
    fileio_buf sql = {0};
    int rc = fileio_read(path, SQL_FILE_MAX, &sql, msg, msglen);
    if (rc) goto out;
    rc = exec_simple(db, "BEGIN IMMEDIATE", path, msg, msglen);
    if (rc) goto out;
    rc = exec_script(db, path, (const char *)sql.data, msg, msglen);
    if (rc) goto rollback;
    if (set_version > 0) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", set_version);
        rc = exec_simple(db, pragma, path, msg, msglen);
        if (rc) goto rollback;
    }
    if (expect_version > 0) {
        int v = 0;
        rc = migrate_db_version(db, &v, msg, msglen);
        if (rc) goto rollback;
        if (v != expect_version) {
            rc = err_set(msg, msglen, ERR_INVALID,
                         "%s sets user_version %d but the newest migration is %d; they must match",
                         path, v, expect_version);
            goto rollback;
        }
    }
    rc = exec_simple(db, "COMMIT", path, msg, msglen);
    if (rc) goto rollback;
    goto out;
rollback:
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
    fileio_buf_free(&sql);
    return rc;
}

/* The start of every migration: no transaction may be open on DB (each file
 * runs in its own), then SQL_DIR's migrations are listed into L (the caller
 * frees it with list_free when this returns 0). */
static int start_migration(sqlite3 *db, const char *sql_dir, migration_list *l, char *msg,
                           size_t msglen)
{
    if (!sqlite3_get_autocommit(db))
        return err_set(msg, msglen, ERR_STATE, "cannot migrate inside an open transaction");
    return list_migrations(sql_dir, l, msg, msglen);
}

/* Applies the migrations of L numbered above the database's version. */
static int run_pending(sqlite3 *db, const char *sql_dir, const migration_list *l, char *msg,
                       size_t msglen)
{
    int v = 0;
    int rc = migrate_db_version(db, &v, msg, msglen);
    if (rc) return rc;
    int latest = l->n ? l->v[l->n - 1].version : 0;
    if (v > latest) {
        return err_set(msg, msglen, ERR_STATE,
                       "database schema version %d is newer than the newest migration (%d) in "
                       "%s/migrations; use a newer sweepd",
                       v, latest, sql_dir);
    }
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].version <= v) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/migrations/%s", sql_dir, l->v[i].name);
        rc = run_file(db, path, l->v[i].version, 0, msg, msglen);
        if (rc) return rc;
        log_info("database migrated to version %d (%s)", l->v[i].version, l->v[i].name);
    }
    return 0;
}

int migrate_run_pending(sqlite3 *db, const char *sql_dir, char *msg, size_t msglen)
{
    migration_list l;
    int rc = start_migration(db, sql_dir, &l, msg, msglen);
    if (rc) return rc;
    rc = run_pending(db, sql_dir, &l, msg, msglen);
    list_free(&l);
    return rc;
}

int migrate_apply(sqlite3 *db, const char *sql_dir, char *msg, size_t msglen)
{
    migration_list l;
    int rc = start_migration(db, sql_dir, &l, msg, msglen);
    if (rc) return rc;
    int latest = l.n ? l.v[l.n - 1].version : 0;
    int v = 0, objects = 0;
    rc = migrate_db_version(db, &v, msg, msglen);
    if (rc) goto out;
    if (v == 0) {
        rc = count_objects(db, &objects, msg, msglen);
        if (rc) goto out;
        if (objects > 0) {
            rc = err_set(msg, msglen, ERR_STATE,
                         "the database has tables but no schema version (user_version 0); it "
                         "was not created by sweepd");
            goto out;
        }
        if (latest == 0) {
            rc = err_set(msg, msglen, ERR_INVALID, "%s/migrations: no migration files", sql_dir);
            goto out;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/schema.sql", sql_dir);
        rc = run_file(db, path, 0, latest, msg, msglen);
        if (rc) goto out;
        log_info("database created at schema version %d", latest);
        goto out;
    }
    rc = run_pending(db, sql_dir, &l, msg, msglen);
out:
    list_free(&l);
    return rc;
}
