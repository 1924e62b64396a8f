/* checkpoint — writes and reads a trial's checkpoint.safetensors and
 * best.safetensors (format in checkpoint.h). Model tensors keep their
 * torchvision names so the files are ordinary weight files for `predict`,
 * `eval` and PyTorch; optimizer state rides along under "optim." names that a
 * model loader ignores. */
#include "checkpoint.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "image.h"
#include "log.h"
#include "numparse.h"
#include "weights_meta.h"

#define JX_ABSENT_META 1 // meta_get_int: key not present

int ckpt_path(char *buf, size_t n, const char *dir, const char *name)
{
    int w = snprintf(buf, n, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= n) return ERR_RANGE;
    return 0;
}

/* JSON text of V (compact, exact reals); caller frees. */
static char *dump_exact(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17) |
                             JSON_ENCODE_ANY);
}

static int meta_json(st_writer *w, const char *key, const json_t *v)
{
    if (!v) return 0;
    char *s = dump_exact(v);
    if (!s) return ERR_NOMEM;
    int rc = st_writer_meta(w, key, s);
    free(s);
    return rc;
}

static int meta_int(st_writer *w, const char *key, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return st_writer_meta(w, key, buf);
}

static json_t *float3(const float *v)
{
    return json_pack("[f, f, f]", (double)v[0], (double)v[1], (double)v[2]);
}

int ckpt_save(const char *path, resnet *m, optim *o, const ckpt_info *info, char *msg,
              size_t msglen)
{
    st_writer *w = st_writer_new();
    char **names = NULL; // optimizer tensor names (owned until save)
    size_t nnames = 0;
    json_t *classes = NULL, *mean = NULL, *std = NULL, *oj = NULL;
    int rc = 0;
    if (!w) return err_set(msg, msglen, ERR_NOMEM, "%s: out of memory for the writer", path);
    size_t count = resnet_tensor_count(m);
    for (size_t i = 0; i < count; i++) {
        const resnet_tensor *t = resnet_tensor_at(m, i);
        if ((rc = st_writer_add_f32(w, t->name, t->ndim, t->shape, t->data)) < 0) goto fail;
    }
    if (o && o->slots > 0) {
        names = calloc(count * (size_t)o->slots, sizeof *names);
        if (!names) {
            rc = ERR_NOMEM;
            goto fail;
        }
        for (int k = 0; k < o->slots; k++) {
            float *slot = optim_slot(o, k);
            for (size_t i = 0; i < count; i++) {
                const resnet_tensor *t = resnet_tensor_at(m, i);
                if (!t->trainable || t->offset < 0) continue;
                SWEEP_ASSERT((size_t)t->offset + t->numel <= o->n);
                size_t len = strlen(t->name) + strlen(optim_slot_name(o, k)) + 8;
                char *nm = malloc(len);
                if (!nm) {
                    rc = ERR_NOMEM;
                    goto fail;
                }
                snprintf(nm, len, "optim.%s.%s", optim_slot_name(o, k), t->name);
                names[nnames++] = nm;
                if ((rc = st_writer_add_f32(w, nm, t->ndim, t->shape, slot + t->offset)) < 0)
                    goto fail;
            }
        }
    }
    classes = json_array();
    if (!classes) {
        rc = ERR_NOMEM;
        goto fail;
    }
    for (int i = 0; i < info->nclasses; i++)
        json_array_append_new(classes, json_string(info->classes[i]));
    const image_norm *norm = info->norm ? info->norm : &image_norm_imagenet;
    mean = float3(norm->mean);
    std = float3(norm->std);
    if ((rc = st_writer_meta(w, "format", CKPT_FORMAT)) < 0 ||
        (rc = st_writer_meta(w, "arch", info->arch)) < 0 ||
        (rc = meta_json(w, "classes", classes)) < 0 ||
        (rc = meta_int(w, "input_size", info->input_size)) < 0 ||
        (rc = meta_json(w, "mean", mean)) < 0 || (rc = meta_json(w, "std", std)) < 0 ||
        (rc = meta_int(w, "epoch", info->epoch)) < 0 ||
        (rc = meta_int(w, "step", info->step)) < 0 ||
        (rc = meta_int(w, "best_epoch", info->best_epoch)) < 0 ||
        (rc = meta_json(w, "metrics", info->metrics)) < 0 ||
        (rc = meta_json(w, "rng", info->rng)) < 0 ||
        (rc = meta_json(w, "train_state", info->train_state)) < 0)
        goto fail;
    if (info->spec_hash && (rc = st_writer_meta(w, "spec_hash", info->spec_hash)) < 0) goto fail;
    if (o) {
        oj = json_pack("{s:s, s:I, s:i}", "kind",
                       o->cfg.kind == OPTIM_SGD    ? "sgd"
                       : o->cfg.kind == OPTIM_ADAM ? "adam"
                                                   : "adamw",
                       "step", (json_int_t)o->step, "slots", o->slots);
        if ((rc = meta_json(w, "optim", oj)) < 0) goto fail;
    }
    rc = st_writer_save(w, path, msg, msglen);
    goto out;
fail:
    if (rc == ERR_NOMEM)
        err_set(msg, msglen, rc, "%s: out of memory preparing the checkpoint", path);
    else
        err_set(msg, msglen, rc, "%s: cannot prepare the checkpoint (%s)", path, err_str(rc));
out:
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    json_decref(classes);
    json_decref(mean);
    json_decref(std);
    json_decref(oj);
    st_writer_free(w);
    return rc;
}

void ckpt_meta_free(ckpt_meta *m)
{
    if (!m) return;
    free(m->arch);
    for (int i = 0; i < m->nclasses; i++)
        free(m->classes[i]);
    free(m->classes);
    free(m->spec_hash);
    json_decref(m->metrics);
    json_decref(m->rng);
    json_decref(m->optim);
    json_decref(m->train_state);
    memset(m, 0, sizeof *m);
}

/* Parses a decimal integer metadata value in [LO, HI]. */
static int meta_get_int(const st_file *f, const char *key, int lo, int hi, int *out)
{
    const char *s = st_metadata(f, key);
    if (!s) return JX_ABSENT_META;
    char msg[160];
    return numparse_int(key, s, lo, hi, out, msg, sizeof msg) ? ERR_PARSE : 0;
}

static json_t *meta_get_json(const st_file *f, const char *key)
{
    const char *s = st_metadata(f, key);
    if (!s) return NULL;
    return json_loads(s, JSON_DECODE_ANY, NULL);
}

int ckpt_read_meta(const st_file *f, ckpt_meta *m, char *msg, size_t msglen)
{
    memset(m, 0, sizeof *m);
    m->epoch = -1;
    const char *path = st_path(f);
    const char *arch = st_metadata(f, "arch");
    if (!arch || !*arch)
        return err_set(msg, msglen, ERR_MODEL,
                       "%s: no \"arch\" in the file's metadata (not a sweepd checkpoint?)", path);
    if (!(m->arch = strdup(arch))) return ERR_NOMEM;
    const char *cs = st_metadata(f, "classes");
    json_t *ca = cs ? json_loads(cs, 0, NULL) : NULL;
    if (!json_is_array(ca) || json_array_size(ca) == 0) {
        json_decref(ca);
        return err_set(msg, msglen, ERR_MODEL,
                       "%s: metadata \"classes\" %s: expected a non-empty JSON array of names",
                       path, cs ? "is malformed" : "is missing");
    }
    size_t n = json_array_size(ca);
    m->classes = calloc(n, sizeof *m->classes);
    if (!m->classes) {
        json_decref(ca);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(ca, i));
        if (!s) {
            json_decref(ca);
            return err_set(msg, msglen, ERR_MODEL, "%s: metadata classes[%zu]: expected a string",
                           path, i);
        }
        if (!(m->classes[i] = strdup(s))) {
            json_decref(ca);
            return ERR_NOMEM;
        }
        m->nclasses = (int)i + 1;
    }
    json_decref(ca);
    weights_meta wm;
    int rc = weights_meta_read(st_file_header(f), &wm, msg, msglen);
    if (rc < 0) return rc;
    if (!wm.input_size)
        return err_set(msg, msglen, ERR_MODEL, "%s: metadata \"input_size\" is missing", path);
    m->input_size = wm.input_size;
    memcpy(m->mean, wm.mean, sizeof m->mean);
    memcpy(m->std, wm.std, sizeof m->std);
    if (meta_get_int(f, "epoch", 0, INT_MAX, &m->epoch) == ERR_PARSE)
        return err_set(msg, msglen, ERR_MODEL, "%s: metadata \"epoch\" is not an integer", path);
    if (meta_get_int(f, "step", 0, INT_MAX, &m->step) == ERR_PARSE)
        return err_set(msg, msglen, ERR_MODEL, "%s: metadata \"step\" is not an integer", path);
    if (meta_get_int(f, "best_epoch", 0, INT_MAX, &m->best_epoch) == ERR_PARSE)
        return err_set(msg, msglen, ERR_MODEL, "%s: metadata \"best_epoch\" is not an integer",
                       path);
    const char *h = st_metadata(f, "spec_hash");
    if (h && !(m->spec_hash = strdup(h))) return ERR_NOMEM;
    m->metrics = meta_get_json(f, "metrics");
    m->rng = meta_get_json(f, "rng");
    m->optim = meta_get_json(f, "optim");
    m->train_state = meta_get_json(f, "train_state");
    return 0;
}

int ckpt_load_optim(const st_file *f, resnet *m, optim *o, char *msg, size_t msglen)
{
    const char *path = st_path(f);
    json_t *oj = meta_get_json(f, "optim");
    const char *kind = json_string_value(json_object_get(oj, "kind"));
    json_t *stepj = json_object_get(oj, "step");
    const char *want = o->cfg.kind == OPTIM_SGD    ? "sgd"
                       : o->cfg.kind == OPTIM_ADAM ? "adam"
                                                   : "adamw";
    int rc = 0;
    if (!kind || !json_is_integer(stepj)) {
        rc =
            err_set(msg, msglen, ERR_MODEL, "%s: metadata \"optim\" is missing or malformed", path);
        goto out;
    }
    if (strcmp(kind, want)) {
        rc = err_set(msg, msglen, ERR_MODEL, "%s: optimizer state is %s, the trial uses %s", path,
                     kind, want);
        goto out;
    }
    for (int k = 0; k < o->slots; k++) {
        float *slot = optim_slot(o, k);
        for (size_t i = 0; i < resnet_tensor_count(m); i++) {
            const resnet_tensor *t = resnet_tensor_at(m, i);
            if (!t->trainable || t->offset < 0) continue;
            char name[512];
            snprintf(name, sizeof name, "optim.%s.%s", optim_slot_name(o, k), t->name);
            const st_tensor *st = st_find(f, name);
            if (!st) {
                rc = err_set(msg, msglen, ERR_MODEL, "%s: tensor %s is missing", path, name);
                goto out;
            }
            if ((size_t)st->numel != t->numel) {
                rc =
                    err_set(msg, msglen, ERR_MODEL, "%s: tensor %s has %lld elements, expected %zu",
                            path, name, (long long)st->numel, t->numel);
                goto out;
            }
            if ((rc = st_read_f32(f, st, slot + t->offset, msg, msglen)) < 0) {
                rc = ERR_MODEL;
                goto out;
            }
        }
    }
    o->step = (long)json_integer_value(stepj);
out:
    json_decref(oj);
    return rc;
}
