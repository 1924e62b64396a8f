/* layers_ref — naive reference implementations of the layers in layers.h.
 *
 * Direct loops over the definitions with double accumulation and no BLAS, in
 * the same channel-major (C, N, H, W) layout as the optimised kernels. They
 * exist only to be compared against worker/engine/layers.c in the unit tests, so
 * clarity wins over speed here. */
#include <math.h>
#include <string.h>

#include "layers.h"

#define AT(t, c, n, y, x, N, H, W) (t)[((((size_t)(c) * (N) + (n)) * (H) + (y)) * (W) + (x))]

void conv2d_forward_ref(float *out, const float *in, const float *w, const conv2d_desc *d)
{
    for (int o = 0; o < d->oc; o++)
        for (int n = 0; n < d->n; n++)
            for (int oy = 0; oy < d->oh; oy++)
                for (int ox = 0; ox < d->ow; ox++) {
                    double s = 0;
                    for (int c = 0; c < d->c; c++)
                        for (int ky = 0; ky < d->kh; ky++)
                            for (int kx = 0; kx < d->kw; kx++) {
                                int y = oy * d->stride - d->pad + ky;
                                int x = ox * d->stride - d->padw + kx;
                                if (y < 0 || y >= d->h || x < 0 || x >= d->w) continue;
                                s += (double)AT(in, c, n, y, x, d->n, d->h, d->w) *
                                     w[(((size_t)o * d->c + c) * d->kh + ky) * d->kw + kx];
                            }
                    AT(out, o, n, oy, ox, d->n, d->oh, d->ow) = (float)s;
                }
}

void conv2d_backward_ref(float *din, float *dw, const float *dout, const float *in, const float *w,
                         const conv2d_desc *d, int din_accumulate)
{
    if (dw) {
        for (int o = 0; o < d->oc; o++)
            for (int c = 0; c < d->c; c++)
                for (int ky = 0; ky < d->kh; ky++)
                    for (int kx = 0; kx < d->kw; kx++) {
                        double s = 0;
                        for (int n = 0; n < d->n; n++)
                            for (int oy = 0; oy < d->oh; oy++)
                                for (int ox = 0; ox < d->ow; ox++) {
                                    int y = oy * d->stride - d->pad + ky;
                                    int x = ox * d->stride - d->padw + kx;
                                    if (y < 0 || y >= d->h || x < 0 || x >= d->w) continue;
                                    s += (double)AT(in, c, n, y, x, d->n, d->h, d->w) *
                                         AT(dout, o, n, oy, ox, d->n, d->oh, d->ow);
                                }
                        dw[(((size_t)o * d->c + c) * d->kh + ky) * d->kw + kx] += (float)s;
                    }
    }
    if (din) {
        for (int c = 0; c < d->c; c++)
            for (int n = 0; n < d->n; n++)
                for (int y = 0; y < d->h; y++)
                    for (int x = 0; x < d->w; x++) {
                        double s = 0;
                        for (int o = 0; o < d->oc; o++)
                            for (int ky = 0; ky < d->kh; ky++)
                                for (int kx = 0; kx < d->kw; kx++) {
                                    int ty = y + d->pad - ky, tx = x + d->padw - kx;
                                    if (ty < 0 || tx < 0 || ty % d->stride || tx % d->stride)
                                        continue;
                                    int oy = ty / d->stride, ox = tx / d->stride;
                                    if (oy >= d->oh || ox >= d->ow) continue;
                                    s += (double)AT(dout, o, n, oy, ox, d->n, d->oh, d->ow) *
                                         w[(((size_t)o * d->c + c) * d->kh + ky) * d->kw + kx];
                                }
                        float *p = &AT(din, c, n, y, x, d->n, d->h, d->w);
                        *p = din_accumulate ? *p + (float)s : (float)s;
                    }
    }
}

void batchnorm_forward_train_ref(float *out, const float *in, const float *gamma, const float *beta,
                                 float *running_mean, float *running_var, float *save_mean,
                                 float *save_invstd, int n, int c, int hw, float momentum,
                                 float eps, int relu)
{
    size_t m = (size_t)n * hw;
    for (int ch = 0; ch < c; ch++) {
        const float *x = in + ch * m;
        double mean = 0, var = 0;
        for (size_t i = 0; i < m; i++)
            mean += x[i];
        mean /= (double)m;
        for (size_t i = 0; i < m; i++)
            var += (x[i] - mean) * (x[i] - mean);
        var /= (double)m;
        double invstd = 1.0 / sqrt(var + eps);
        save_mean[ch] = (float)mean;
        save_invstd[ch] = (float)invstd;
        if (running_mean) {
            double unbiased = m > 1 ? var * (double)m / (double)(m - 1) : var;
            running_mean[ch] = (float)((1 - momentum) * running_mean[ch] + momentum * mean);
            running_var[ch] = (float)((1 - momentum) * running_var[ch] + momentum * unbiased);
        }
        for (size_t i = 0; i < m; i++) {
            double y = gamma[ch] * (x[i] - mean) * invstd + beta[ch];
            if (relu && y < 0) y = 0;
            out[ch * m + i] = (float)y;
        }
    }
}

void batchnorm_forward_eval_ref(float *out, const float *in, const float *gamma, const float *beta,
                                const float *running_mean, const float *running_var, int n, int c,
                                int hw, float eps, int relu)
{
    size_t m = (size_t)n * hw;
    for (int ch = 0; ch < c; ch++)
        for (size_t i = 0; i < m; i++) {
            double y = gamma[ch] * (in[ch * m + i] - (double)running_mean[ch]) /
                           sqrt((double)running_var[ch] + eps) +
                       beta[ch];
            if (relu && y < 0) y = 0;
            out[ch * m + i] = (float)y;
        }
}

void batchnorm_backward_ref(float *din, float *dgamma, float *dbeta, const float *dout,
                            const float *in, const float *out, const float *gamma,
                            const float *save_mean, const float *save_invstd, int n, int c, int hw,
                            int relu)
{
    size_t m = (size_t)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double sdy = 0, sdyx = 0;
        for (size_t i = 0; i < m; i++) {
            size_t k = ch * m + i;
            double dy = (relu && out[k] <= 0) ? 0 : dout[k];
            double xh = (in[k] - (double)save_mean[ch]) * save_invstd[ch];
            sdy += dy;
            sdyx += dy * xh;
        }
        if (dgamma) dgamma[ch] += (float)sdyx;
        if (dbeta) dbeta[ch] += (float)sdy;
        if (!din) continue;
        for (size_t i = 0; i < m; i++) {
            size_t k = ch * m + i;
            double dy = (relu && out[k] <= 0) ? 0 : dout[k];
            double xh = (in[k] - (double)save_mean[ch]) * save_invstd[ch];
            din[k] = (float)(gamma[ch] * save_invstd[ch] *
                             (dy - sdy / (double)m - xh * sdyx / (double)m));
        }
    }
}

void maxpool2d_forward_ref(float *out, int32_t *idx, const float *in, int n, int c, int h, int w,
                           int k, int stride, int pad, int oh, int ow)
{
    for (int ch = 0; ch < c; ch++)
        for (int b = 0; b < n; b++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    float best = -INFINITY;
                    int32_t bi = -1;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int y = oy * stride - pad + ky, x = ox * stride - pad + kx;
                            if (y < 0 || y >= h || x < 0 || x >= w) continue;
                            float v = AT(in, ch, b, y, x, n, h, w);
                            if (bi < 0 || v > best) {
                                best = v;
                                bi = y * w + x;
                            }
                        }
                    AT(out, ch, b, oy, ox, n, oh, ow) = best;
                    AT(idx, ch, b, oy, ox, n, oh, ow) = bi;
                }
}

void maxpool2d_backward_ref(float *din, const float *dout, const int32_t *idx, int n, int c, int h,
                            int w, int oh, int ow)
{
    memset(din, 0, sizeof(float) * (size_t)c * n * h * w);
    for (int ch = 0; ch < c; ch++)
        for (int b = 0; b < n; b++)
            for (int i = 0; i < oh * ow; i++) {
                size_t plane = (size_t)ch * n + b;
                din[plane * h * w + idx[plane * oh * ow + i]] += dout[plane * oh * ow + i];
            }
}

void avgpool_forward_ref(float *out, const float *in, int n, int c, int hw)
{
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++) {
            double s = 0;
            for (int i = 0; i < hw; i++)
                s += in[((size_t)ch * n + b) * hw + i];
            out[(size_t)b * c + ch] = (float)(s / hw);
        }
}

void linear_forward_ref(float *out, const float *in, const float *w, const float *b, int n,
                        int in_f, int out_f)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out_f; o++) {
            double s = b ? b[o] : 0;
            for (int k = 0; k < in_f; k++)
                s += (double)in[(size_t)i * in_f + k] * w[(size_t)o * in_f + k];
            out[(size_t)i * out_f + o] = (float)s;
        }
}

void linear_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, int n, int in_f, int out_f)
{
    for (int o = 0; o < out_f; o++) {
        double sb = 0;
        for (int i = 0; i < n; i++)
            sb += dout[(size_t)i * out_f + o];
        if (db) db[o] += (float)sb;
        if (dw)
            for (int k = 0; k < in_f; k++) {
                double s = 0;
                for (int i = 0; i < n; i++)
                    s += (double)dout[(size_t)i * out_f + o] * in[(size_t)i * in_f + k];
                dw[(size_t)o * in_f + k] += (float)s;
            }
    }
    if (din)
        for (int i = 0; i < n; i++)
            for (int k = 0; k < in_f; k++) {
                double s = 0;
                for (int o = 0; o < out_f; o++)
                    s += (double)dout[(size_t)i * out_f + o] * w[(size_t)o * in_f + k];
                din[(size_t)i * in_f + k] = (float)s;
            }
}

float softmax_xent_forward_ref(float *probs, const float *logits, const int *labels, int n, int k,
                               float smoothing)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        double mx = z[0];
        for (int j = 1; j < k; j++)
            mx = z[j] > mx ? z[j] : mx;
        double se = 0;
        for (int j = 0; j < k; j++)
            se += exp(z[j] - mx);
        double lse = mx + log(se);
        for (int j = 0; j < k; j++) {
            double t = smoothing / k + (j == labels[i] ? 1.0 - smoothing : 0.0);
            total -= t * (z[j] - lse);
            probs[(size_t)i * k + j] = (float)exp(z[j] - lse);
        }
    }
    return (float)(total / n);
}

void bias_forward_ref(float *out, const float *b, int n, int c, int hw, int relu)
{
    for (int ch = 0; ch < c; ch++)
        for (size_t i = 0; i < (size_t)n * hw; i++) {
            float *o = &out[(size_t)ch * n * hw + i];
            double v = (double)*o + b[ch];
            *o = (float)(relu && v < 0 ? 0 : v);
        }
}

void bias_backward_ref(float *db, const float *dout, int n, int c, int hw)
{
    for (int ch = 0; ch < c; ch++) {
        double s = 0;
        for (size_t i = 0; i < (size_t)n * hw; i++)
            s += dout[(size_t)ch * n * hw + i];
        db[ch] += (float)s;
    }
}

/* Divisor of the window at (oy, ox) (PyTorch's avg_pool2d rule). */
static int avg_divisor(int oy, int ox, int h, int w, int k, int stride, int pad, int count_pad)
{
    int n = 0;
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++) {
            int y = oy * stride - pad + ky, x = ox * stride - pad + kx;
            int inside = y >= 0 && y < h && x >= 0 && x < w;
            int in_padded = y < h + pad && x < w + pad;
            n += count_pad ? in_padded : inside;
        }
    return n;
}

void avgpool2d_forward_ref(float *out, const float *in, int n, int c, int h, int w, int k,
                           int stride, int pad, int count_pad, int oh, int ow)
{
    for (int ch = 0; ch < c; ch++)
        for (int b = 0; b < n; b++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double s = 0;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int y = oy * stride - pad + ky, x = ox * stride - pad + kx;
                            if (y >= 0 && y < h && x >= 0 && x < w)
                                s += AT(in, ch, b, y, x, n, h, w);
                        }
                    AT(out, ch, b, oy, ox, n, oh, ow) =
                        (float)(s / avg_divisor(oy, ox, h, w, k, stride, pad, count_pad));
                }
}

void avgpool2d_backward_ref(float *din, const float *dout, int n, int c, int h, int w, int k,
                            int stride, int pad, int count_pad, int oh, int ow)
{
    memset(din, 0, sizeof(float) * (size_t)c * n * h * w);
    for (int ch = 0; ch < c; ch++)
        for (int b = 0; b < n; b++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double g = AT(dout, ch, b, oy, ox, n, oh, ow) /
                               (double)avg_divisor(oy, ox, h, w, k, stride, pad, count_pad);
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int y = oy * stride - pad + ky, x = ox * stride - pad + kx;
                            if (y >= 0 && y < h && x >= 0 && x < w)
                                AT(din, ch, b, y, x, n, h, w) += (float)g;
                        }
                }
}

/* Whether input pixel I lies in adaptive cell O (of OUT cells over IN). */
static int in_cell(int i, int o, int in, int out)
{
    return i >= (int)floor((double)o * in / out) && i < (int)ceil((double)(o + 1) * in / out);
}

static void adaptive_ref(float *big, float *small, int n, int c, int h, int w, int oh, int ow,
                         int backward)
{
    if (backward) memset(big, 0, sizeof(float) * (size_t)c * n * h * w);
    for (int ch = 0; ch < c; ch++)
        for (int b = 0; b < n; b++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double s = 0;
                    int cnt = 0;
                    for (int y = 0; y < h; y++)
                        for (int x = 0; x < w; x++)
                            if (in_cell(y, oy, h, oh) && in_cell(x, ox, w, ow)) {
                                s += AT(big, ch, b, y, x, n, h, w);
                                cnt++;
                            }
                    if (!backward) {
                        AT(small, ch, b, oy, ox, n, oh, ow) = (float)(s / cnt);
                        continue;
                    }
                    for (int y = 0; y < h; y++)
                        for (int x = 0; x < w; x++)
                            if (in_cell(y, oy, h, oh) && in_cell(x, ox, w, ow))
                                AT(big, ch, b, y, x, n, h, w) +=
                                    AT(small, ch, b, oy, ox, n, oh, ow) / (float)cnt;
                }
}

void adaptive_avgpool_forward_ref(float *out, const float *in, int n, int c, int h, int w, int oh,
                                  int ow)
{
    adaptive_ref((float *)in, out, n, c, h, w, oh, ow, 0);
}

void adaptive_avgpool_backward_ref(float *din, const float *dout, int n, int c, int h, int w,
                                   int oh, int ow)
{
    adaptive_ref(din, (float *)dout, n, c, h, w, oh, ow, 1);
}

void concat_forward_ref(float *out, const float *const *in, const int *c, int k, int n, int hw)
{
    int total = 0;
    for (int i = 0; i < k; i++)
        total += c[i];
    /* NCHW semantics: image b, output channel (base_i + ch) is input i's channel ch */
    for (int b = 0; b < n; b++) {
        int base = 0;
        for (int i = 0; i < k; i++) {
            for (int ch = 0; ch < c[i]; ch++)
                for (int p = 0; p < hw; p++)
                    out[((size_t)(base + ch) * n + b) * hw + p] =
                        in[i][((size_t)ch * n + b) * hw + p];
            base += c[i];
        }
    }
    (void)total;
}
