/* import_idx_cmd — `sweep-worker import-idx`: the command line of the idx to
 * ImageFolder conversion (the conversion itself: idx_import.h).
 *
 *   sweep-worker import-idx IMAGES.idx[.gz] LABELS.idx[.gz] OUTDIR
 *       [--names a,b,...] [--quality Q] [--limit N] [--classes 5,6,7]
 *
 * writes OUTDIR/<class name>/<index>.jpg. Images are stored as grayscale
 * JPEGs (quality 95 by default). Class names default to Fashion-MNIST's, made
 * safe for file names:
 *   0 T-shirt_top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt,
 *   7 Sneaker, 8 Bag, 9 Ankle_boot
 * (a label beyond the list is named by its number). --limit N keeps at most N
 * images per class (the first ones in file order), --classes keeps only the
 * listed labels (their folders keep their names). Prints one JSON object with
 * the counts on stdout.
 *
 * Steps: import_parse (argv -> import_opts, the config of idx_import),
 * idx_import (the conversion) and import_report (the JSON object).
 *
 * Exit status: 0 done, 2 bad arguments, 3 unreadable or malformed idx files
 * or an unwritable OUTDIR, 6 out of memory. */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "idx_import.h"
#include "log.h"
#include "numparse.h"
#include "worker_cmds.h"

static const char *const fashion_names[10] = {"T-shirt_top", "Trouser",   "Pullover", "Dress",
                                              "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                              "Bag",         "Ankle_boot"};

/* What the command line asks for. */
typedef struct {
    idx_import_config cfg; // the conversion
    char *names_buf;       // --names split in place; cfg.names point into it (owned)
    bool help;             // --help / -h: print the usage, convert nothing
} import_opts;

static void usage(FILE *f)
{
    fprintf(f, "usage: sweep-worker import-idx IMAGES.idx[.gz] LABELS.idx[.gz] OUTDIR\n"
               "           [--names a,b,...] [--quality Q] [--limit N] [--classes L,L,...]\n"
               "Writes OUTDIR/<class name>/<index>.jpg (grayscale JPEG) for every image.\n"
               "  --names     class names for labels 0,1,... (default: Fashion-MNIST's\n"
               "              T-shirt_top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,\n"
               "              Bag,Ankle_boot)\n"
               "  --quality   JPEG quality 1..100 (default 95)\n"
               "  --limit     at most N images per class (default: all)\n"
               "  --classes   only these labels (default: all)\n");
}

static bool safe_name(const char *s)
{
    if (!*s || s[0] == '.') return false;
    for (; *s; s++)
        if (*s == '/' || *s == '"' || *s == '\\' || (unsigned char)*s < 0x20) return false;
    return true;
}

/* --names a,b,...: the user's folder names, split into O->names_buf. */
static int parse_names(import_opts *o, const char *arg)
{
    if (!(o->names_buf = strdup(arg))) return WEXIT_NOMEM;
    char *save = NULL;
    for (char *t = strtok_r(o->names_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->cfg.nnames == IDX_MAX_LABELS || !safe_name(t)) {
            fprintf(stderr,
                    "import-idx: --names: '%s' is not usable as a folder name (empty, "
                    "starting with '.', or containing '/')\n",
                    t);
            return WEXIT_SPEC;
        }
        o->cfg.names[o->cfg.nnames++] = t;
    }
    o->cfg.names_strict = true;
    return 0;
}

/* --classes L,L,...: only these labels. */
static int parse_classes(import_opts *o, const char *arg)
{
    long long labels[IDX_MAX_LABELS];
    size_t n;
    char msg[256];
    if (numparse_list("--classes", arg, 0, IDX_MAX_LABELS - 1, labels, IDX_MAX_LABELS, &n, msg,
                      sizeof msg)) {
        fprintf(stderr, "import-idx: %s\n", msg);
        return WEXIT_SPEC;
    }
    memset(o->cfg.keep, 0, sizeof o->cfg.keep);
    for (size_t i = 0; i < n; i++)
        o->cfg.keep[labels[i]] = true;
    return 0;
}

/* argv -> O (freed with free(o->names_buf), also after a failure); --help
 * prints the usage, errors go to stderr. 0, or the exit code. */
static int import_parse(int argc, char **argv, import_opts *o)
{
    memset(o, 0, sizeof *o);
    idx_import_config *cfg = &o->cfg;
    cfg->quality = 95;
    cfg->limit = -1;
    const char *pos[3];
    int npos = 0;
    const char *names_arg = NULL, *classes_arg = NULL;
    char msg[256];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            o->help = true;
            return 0;
        }
        if (strcmp(a, "--names") == 0 || strcmp(a, "--quality") == 0 || strcmp(a, "--limit") == 0 ||
            strcmp(a, "--classes") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "import-idx: %s needs a value\n", a);
                usage(stderr);
                return WEXIT_SPEC;
            }
            const char *v = argv[++i];
            int bad = 0;
            if (strcmp(a, "--names") == 0)
                names_arg = v;
            else if (strcmp(a, "--classes") == 0)
                classes_arg = v;
            else if (strcmp(a, "--quality") == 0)
                bad = numparse_int(a, v, 1, 100, &cfg->quality, msg, sizeof msg);
            else
                bad = numparse_long(a, v, 1, LLONG_MAX, &cfg->limit, msg, sizeof msg);
            if (bad) {
                fprintf(stderr, "import-idx: %s\n", msg);
                return WEXIT_SPEC;
            }
            continue;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "import-idx: unknown option %s\n", a);
            usage(stderr);
            return WEXIT_SPEC;
        }
        if (npos == 3) {
            fprintf(stderr, "import-idx: unexpected argument %s\n", a);
            usage(stderr);
            return WEXIT_SPEC;
        }
        pos[npos++] = a;
    }
    if (npos != 3) {
        usage(stderr);
        return WEXIT_SPEC;
    }
    cfg->images_path = pos[0];
    cfg->labels_path = pos[1];
    cfg->outdir = pos[2];
    int rc;
    if (names_arg) {
        if ((rc = parse_names(o, names_arg))) return rc;
    } else {
        for (int i = 0; i < 10; i++)
            cfg->names[i] = fashion_names[i];
        cfg->nnames = 10;
    }
    if (classes_arg) return parse_classes(o, classes_arg);
    for (int i = 0; i < IDX_MAX_LABELS; i++)
        cfg->keep[i] = true;
    return 0;
}

/* Prints R as the one JSON object: images written, out_dir, per-class counts. */
static void import_report(const idx_import_config *cfg, const idx_import_result *r)
{
    printf("{\"images\":%zu,\"out_dir\":\"", r->written);
    for (const char *p = cfg->outdir; *p; p++) {
        if (*p == '"' || *p == '\\') putchar('\\');
        if ((unsigned char)*p < 0x20)
            printf("\\u%04x", (unsigned char)*p);
        else
            putchar(*p);
    }
    printf("\",\"classes\":{");
    bool first = true;
    for (int l = 0; l < IDX_MAX_LABELS; l++) {
        if (!r->count[l]) continue;
        printf("%s\"%s\":%zu", first ? "" : ",", r->names[l], r->count[l]);
        first = false;
    }
    printf("}}\n");
    fflush(stdout);
    log_info("import-idx: wrote %zu JPEGs of %ux%u from %s into %s", r->written, r->width,
             r->height, cfg->images_path, cfg->outdir);
}

int cmd_import_idx(int argc, char **argv)
{
    import_opts o;
    int status = import_parse(argc, argv, &o);
    if (status != WEXIT_OK || o.help) goto out;
    idx_import_result *r = malloc(sizeof *r);
    char msg[PATH_MAX + 256];
    int rc = r ? idx_import(&o.cfg, r, msg, sizeof msg)
               : err_set(msg, sizeof msg, ERR_NOMEM, "out of memory");
    if (rc == 0)
        import_report(&o.cfg, r);
    else
        fprintf(stderr, "import-idx: %s\n", msg);
    status = rc == 0             ? WEXIT_OK
             : rc == ERR_INVALID ? WEXIT_SPEC
             : rc == ERR_NOMEM   ? WEXIT_NOMEM
                                 : WEXIT_DATA;
    free(r);
out:
    free(o.names_buf);
    return status;
}
