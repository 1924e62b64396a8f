/* weights_meta — the preprocessing keys of a weights file's metadata
 * (contract in include/weights_meta.h): one reader of "input_size", "mean"
 * and "std" for the worker's commands and the daemon's submission check. */
#include "weights_meta.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "errors.h"
#include "numparse.h"

/* Metadata KEY of H, when there, as 3 finite numbers (POSITIVE: each > 0)
 * into OUT; *HAS says whether it was there. */
static int read_triple(const st_header *h, const char *key, bool positive, float *out, bool *has,
                       char *msg, size_t msglen)
{
    const char *s = st_header_metadata(h, key);
    *has = s != NULL;
    if (!s) return 0;
    json_t *a = json_loads(s, JSON_DECODE_ANY, NULL);
    int rc = 0;
    if (!json_is_array(a) || json_array_size(a) != 3) {
        rc = err_set(msg, msglen, ERR_MODEL,
                     "%s: metadata \"%s\" is %.40s, expected a JSON array of 3 numbers",
                     st_header_path(h), key, s);
        goto out;
    }
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_array_get(a, i);
        double d = json_number_value(v);
        if (!json_is_number(v) || !isfinite(d) || (positive && d <= 0)) {
            rc = err_set(msg, msglen, ERR_MODEL, "%s: metadata \"%s\"[%zu] is not a %snumber",
                         st_header_path(h), key, i, positive ? "positive " : "finite ");
            goto out;
        }
        out[i] = (float)d;
    }
out:
    json_decref(a);
    return rc;
}

int weights_meta_read(const st_header *h, weights_meta *out, char *msg, size_t msglen)
{
    static const float mean[3] = WEIGHTS_IMAGENET_MEAN, std[3] = WEIGHTS_IMAGENET_STD;
    memset(out, 0, sizeof *out);
    memcpy(out->mean, mean, sizeof mean);
    memcpy(out->std, std, sizeof std);
    const char *s = st_header_metadata(h, "input_size");
    if (s && numparse_int("input_size", s, WEIGHTS_MIN_INPUT_SIZE, WEIGHTS_MAX_INPUT_SIZE,
                          &out->input_size, NULL, 0))
        return err_set(msg, msglen, ERR_MODEL,
                       "%s: metadata \"input_size\" is \"%.40s\", not an integer from %d to %d",
                       st_header_path(h), s, WEIGHTS_MIN_INPUT_SIZE, WEIGHTS_MAX_INPUT_SIZE);
    int rc = read_triple(h, "mean", false, out->mean, &out->has_mean, msg, msglen);
    if (!rc) rc = read_triple(h, "std", true, out->std, &out->has_std, msg, msglen);
    return rc;
}

int weights_input_size(const weights_meta *m, int given, const char **from)
{
    const char *f = "default";
    int size = WEIGHTS_DEFAULT_INPUT_SIZE;
    if (given > 0) {
        f = "given";
        size = given;
    } else if (m && m->input_size > 0) {
        f = "weights";
        size = m->input_size;
    }
    if (from) *from = f;
    return size;
}
