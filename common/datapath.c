/* datapath.c — what a data folder may reach: links resolved against the
 * data_roots (and against the data folder, for loops), class folders listed
 * by one rule for the daemon and the worker. Contract: include/datapath.h. */
#include "datapath.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "utf8.h"

bool datapath_under(const char *p, const char *root)
{
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (n == 1 && root[0] == '/') return true;
    return !strncmp(p, root, n) && (p[n] == 0 || p[n] == '/');
}

bool datapath_in_roots(const char *p, char *const *roots, int n_roots)
{
    if (n_roots <= 0) return true;
    for (int i = 0; i < n_roots; i++)
        if (datapath_under(p, roots[i])) return true;
    return false;
}

int datapath_roots_add(char ***roots, int *n, const char *what, const char *dir, char *msg,
                       size_t msglen)
{
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(dir, real))
        return err_set_errno(msg, msglen, ERR_NOTFOUND, errno, "%s: cannot resolve %s", what, dir);
    if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(msg, msglen, ERR_INVALID, "%s: %s is not a directory", what, dir);
    char **nv = realloc(*roots, (size_t)(*n + 1) * sizeof *nv);
    if (!nv) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    *roots = nv;
    if (!(nv[*n] = strdup(real))) return err_set(msg, msglen, ERR_NOMEM, "out of memory");
    (*n)++;
    return 0;
}

void datapath_roots_free(char **roots, int n)
{
    for (int i = 0; i < n; i++)
        free(roots[i]);
    free(roots);
}

datapath_kind datapath_classify(const datapath_scope *sc, const char *path, struct stat *st)
{
    if (lstat(path, st) != 0) return DATAPATH_OTHER;
    if (S_ISLNK(st->st_mode)) {
        char real[PATH_MAX];
        if (!realpath(path, real) || stat(real, st) != 0) return DATAPATH_OTHER; // dangling
        if (datapath_under(sc->real_dir, real)) return DATAPATH_ROOT; // the folder or above it
        if (!datapath_in_roots(real, sc->roots, sc->n_roots)) return DATAPATH_OUTSIDE;
    }
    if (S_ISDIR(st->st_mode)) return DATAPATH_DIR;
    if (S_ISREG(st->st_mode)) return DATAPATH_FILE;
    return DATAPATH_OTHER;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int datapath_list(const char *dir, char ***names, size_t *n, char *msg, size_t msglen)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        if (e == ENOENT)
            return err_set(msg, msglen, ERR_NOTFOUND, "data folder %s does not exist", dir);
        return err_set_errno(msg, msglen, ERR_IO, e, "cannot read data folder %s", dir);
    }
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue; // ".", ".." and hidden entries
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nv = realloc(v, ncap * sizeof *v);
            if (!nv) break;
            v = nv;
            cap = ncap;
        }
        if (!(v[cnt] = strdup(de->d_name))) break;
        cnt++;
    }
    closedir(d);
    if (de) {
        for (size_t i = 0; i < cnt; i++)
            free(v[i]);
        free(v);
        return err_set(msg, msglen, ERR_NOMEM, "out of memory listing %s", dir);
    }
    if (cnt) qsort(v, cnt, sizeof *v, cmp_str);
    *names = v;
    *n = cnt;
    return 0;
}

int datapath_classes(const char *dir, const datapath_scope *sc, char ***names, size_t *n,
                     datapath_note_fn *note, void *ctx, char *msg, size_t msglen)
{
    char **v;
    size_t cnt;
    int rc = datapath_list(dir, &v, &cnt, msg, msglen);
    *names = NULL;
    *n = 0;
    if (rc) return rc;
    size_t kept = 0;
    for (size_t i = 0; i < cnt; i++) {
        char path[PATH_MAX];
        struct stat st;
        datapath_kind k = DATAPATH_OTHER;
        if (rc == 0 && snprintf(path, sizeof path, "%s/%s", dir, v[i]) < (int)sizeof path)
            k = datapath_classify(sc, path, &st);
        if (rc == 0 && k == DATAPATH_DIR && !utf8_valid(v[i])) {
            char esc[256];
            utf8_escape(esc, sizeof esc, v[i]);
            rc = err_set(msg, msglen, ERR_DATA,
                         "data folder %s: class folder \"%s\" has a name that is not valid UTF-8 "
                         "(rename it)",
                         dir, esc);
        }
        if (rc == 0 && k == DATAPATH_DIR) {
            v[kept++] = v[i];
            continue;
        }
        if (rc == 0 && note) note(ctx, v[i], k);
        free(v[i]);
    }
    *names = v;
    *n = kept;
    return rc;
}
