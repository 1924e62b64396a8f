/* winograd7 — 1x7 and 7x1 stride-1 "same" convolutions with the 1-D
 * Winograd F(2, 7) minimal filtering algorithm (contracts in
 * include/winograd7.h). Inception v3's Mixed_6b..6e blocks spend about 30%
 * of their evaluation time in these convolutions at 17x17; layers.c sends
 * them here for the forward pass and the input gradient.
 *
 * One output pair y = (y0, y1) along the kernel's axis from an 8-sample
 * window d of the zero-padded input and the 7 taps g:
 *   y = A^T [(G g) . (B^T d)]       (. : element-wise over 8 positions)
 * with the Toom-Cook matrices of the points 0, 1, -1, 2, -2, 1/2, -1/2 and
 * infinity (B^T is that of the common F(6, 3); G and A^T below).
 *
 * Layout: in (C, N, H, W) -> out (OC, N, H, W). Tiles are output pairs:
 *   1x7 (along W): tile rows r = n*H + y, TW = ceil(W/2) tiles per row;
 *   7x1 (along H): tile rows r = n*ceil(H/2) + ty, W tiles per row.
 * Chunks of whole tile rows keep V (8, C, T) and M (8, OC, T) in cache:
 *   U[xi] (OC, C) = G g             (weights, once per call, in double)
 *   V[xi] (C, T)  = B^T d           (8-sample windows)
 *   M[xi] (OC, T) = U[xi] V[xi]     (8 sgemm calls per chunk)
 *   y (2)         = A^T m           (written or added to the output)
 * The transforms are plain loops over a row's tiles that the compiler
 * vectorises (1x7 windows read two de-interleaved copies of the padded
 * row, so every sample is a contiguous load); they are split over channels
 * with layers_parallel_for and every value is computed the same way
 * whatever the split. */
#pragma GCC optimize("O3")
#include "winograd7.h"

#include <cblas.h>
#include <string.h>

#include "pool.h"

#define W7_MAX_W 1024 // widest input row handled (row buffers on the stack)

static const float w7_zero_row[W7_MAX_W]; // the padding rows of a 7x1 window

int winograd7_applicable(const conv2d_desc *d)
{
    if (d->stride != 1 || d->w > W7_MAX_W) return 0;
    if (d->kh == 1 && d->kw == 7) return d->pad == 0 && d->padw == 3 && d->w >= 2;
    if (d->kh == 7 && d->kw == 1) return d->pad == 3 && d->padw == 0 && d->h >= 2;
    return 0;
}

static int along_w(const conv2d_desc *d)
{
    return d->kw == 7;
}

/* Tiles per tile row, and tile rows per image. */
static int row_tiles(const conv2d_desc *d)
{
    return along_w(d) ? (d->w + 1) / 2 : d->w;
}

static int image_rows(const conv2d_desc *d)
{
    return along_w(d) ? d->h : (d->h + 1) / 2;
}

/* Tile rows per chunk (winograd_chunk_rows; BALANCED: see there). */
static int chunk_rows_b(const conv2d_desc *d, int balanced)
{
    return winograd_chunk_rows(d->n * image_rows(d), row_tiles(d), (size_t)8 * (d->c + d->oc),
                               balanced);
}

static size_t al16(size_t n)
{
    return (n + 15) / 16 * 16;
}

size_t winograd7_workspace_floats(const conv2d_desc *d)
{
    size_t T = (size_t)chunk_rows_b(d, 0) * row_tiles(d);
    return al16((size_t)8 * d->oc * d->c) + al16((size_t)8 * d->c * T) +
           al16((size_t)8 * d->oc * T);
}

/* ---------- weights: U (8, OC, C) = G g ---------- */

/* G (8, 7): rows of the points 0, 1, -1, 2, -2, 1/2, -1/2, infinity, each
 * scaled by 1 / prod(p - q) over the other finite points. */
static void g_matrix(double g[8][7])
{
    for (int k = 0; k < 7; k++) {
        double s = (k & 1) ? -1.0 : 1.0, p2 = (double)(1 << k), q2 = (double)(1 << (6 - k));
        g[0][k] = k == 0 ? -1.0 : 0.0;
        g[1][k] = -2.0 / 9.0;
        g[2][k] = -2.0 / 9.0 * s;
        g[3][k] = p2 / 90.0;
        g[4][k] = s * p2 / 90.0;
        g[5][k] = q2 / 90.0;
        g[6][k] = s * q2 / 90.0;
        g[7][k] = k == 6 ? 1.0 : 0.0;
    }
}

typedef struct {
    float *u;       // (8, OC, C)
    const float *w; // (OC, C, 7), or (C, OC, 7) forward weights when flip
    int oc, c;      // channels of the convolution run
    int flip;       // input gradient: transposed and reversed taps
} w7_wt_ctx;

static void weight_part(void *arg, size_t o0, size_t o1)
{
    const w7_wt_ctx *k = arg;
    const size_t OC = (size_t)k->oc, C = (size_t)k->c;
    double G[8][7];
    g_matrix(G);
    for (size_t o = o0; o < o1; o++)
        for (size_t c = 0; c < C; c++) {
            double g[7];
            for (int t = 0; t < 7; t++)
                g[t] =
                    k->flip ? k->w[(c * OC + o) * 7 + (size_t)(6 - t)] : k->w[(o * C + c) * 7 + t];
            for (int xi = 0; xi < 8; xi++) {
                double s = 0.0;
                for (int t = 0; t < 7; t++)
                    s += G[xi][t] * g[t];
                k->u[((size_t)xi * OC + o) * C + c] = (float)s;
            }
        }
}

/* ---------- input: V (8, C, T) = B^T d ---------- */

typedef struct {
    float *buf;      // V (8, C, T) for the input, or M (8, OC, T) for the output
    float *out;      // the output (OC, N, H, W) (output transform only)
    const float *in; // the input (C, N, H, W) (input transform only)
    const conv2d_desc *d;
    int r0, r1;     // tile rows of the chunk
    size_t T;       // tiles in the chunk
    int accumulate; // output: add instead of overwrite
} w7_chunk_ctx;

/* The eight transformed samples of window (d0..d7), stored at V + xi*stride. */
#define W7_BT(V, stride, i, d0, d1, d2, d3, d4, d5, d6, d7)                                        \
    do {                                                                                           \
        float a1 = (d1) + (d5)-4.25f * (d3), a2 = (d2) + (d6)-4.25f * (d4);                        \
        float b1 = 0.5f * (d1)-2.5f * (d3) + 2.0f * (d5), b2 = 0.25f * (d2)-1.25f * (d4) + (d6);   \
        float c1 = 2.0f * (d1)-2.5f * (d3) + 0.5f * (d5), c2 = 4.0f * (d2)-5.0f * (d4) + (d6);     \
        (V)[0 * (stride) + (i)] = (d6) - (d0) + 5.25f * ((d2) - (d4));                             \
        (V)[1 * (stride) + (i)] = a2 + a1;                                                         \
        (V)[2 * (stride) + (i)] = a2 - a1;                                                         \
        (V)[3 * (stride) + (i)] = b2 + b1;                                                         \
        (V)[4 * (stride) + (i)] = b2 - b1;                                                         \
        (V)[5 * (stride) + (i)] = c2 + c1;                                                         \
        (V)[6 * (stride) + (i)] = c2 - c1;                                                         \
        (V)[7 * (stride) + (i)] = (d7) - (d1) + 5.25f * ((d3) - (d5));                             \
    } while (0)

static void input_part(void *arg, size_t c0, size_t c1)
{
    const w7_chunk_ctx *k = arg;
    const conv2d_desc *d = k->d;
    const int N = d->n, H = d->h, W = d->w, tw = row_tiles(d), ir = image_rows(d);
    const size_t C = (size_t)d->c, T = k->T, vs = C * T; // vs: stride between positions
    float E[W7_MAX_W / 2 + 8], O[W7_MAX_W / 2 + 8];      // de-interleaved padded row
    for (size_t c = c0; c < c1; c++)
        for (int r = k->r0; r < k->r1; r++) {
            const int n = r / ir, yr = r % ir;
            float *v = k->buf + c * T + (size_t)(r - k->r0) * tw;
            const float *img = k->in + ((c * N + n) * (size_t)H) * W;
            if (along_w(d)) {
                /* padded row p[j] = src[j - 3]; E[i] = p[2i], O[i] = p[2i + 1] */
                const float *src = img + (size_t)yr * W;
                for (int i = 0; i < tw + 3; i++) {
                    int x0 = 2 * i - 3, x1 = 2 * i - 2;
                    E[i] = x0 >= 0 && x0 < W ? src[x0] : 0.0f;
                    O[i] = x1 >= 0 && x1 < W ? src[x1] : 0.0f;
                }
                for (int t = 0; t < tw; t++)
                    W7_BT(v, vs, t, E[t], O[t], E[t + 1], O[t + 1], E[t + 2], O[t + 2], E[t + 3],
                          O[t + 3]);
            } else {
                const float *s[8];
                for (int j = 0; j < 8; j++) {
                    int y = 2 * yr - 3 + j;
                    s[j] = y >= 0 && y < H ? img + (size_t)y * W : w7_zero_row;
                }
                for (int x = 0; x < W; x++)
                    W7_BT(v, vs, x, s[0][x], s[1][x], s[2][x], s[3][x], s[4][x], s[5][x], s[6][x],
                          s[7][x]);
            }
        }
}

/* ---------- output: y = A^T m ---------- */

static void output_part(void *arg, size_t o0, size_t o1)
{
    const w7_chunk_ctx *k = arg;
    const conv2d_desc *d = k->d;
    const int N = d->n, H = d->h, W = d->w, tw = row_tiles(d), ir = image_rows(d);
    const size_t OC = (size_t)d->oc, T = k->T, ms = OC * T;
    float Y0[W7_MAX_W], Y1[W7_MAX_W];
    for (size_t o = o0; o < o1; o++)
        for (int r = k->r0; r < k->r1; r++) {
            const int n = r / ir, yr = r % ir;
            const float *m = k->buf + o * T + (size_t)(r - k->r0) * tw;
            for (int t = 0; t < tw; t++) {
                float m1 = m[1 * ms + t], m2 = m[2 * ms + t], m3 = m[3 * ms + t];
                float m4 = m[4 * ms + t], m5 = m[5 * ms + t], m6 = m[6 * ms + t];
                Y0[t] = m[t] + (m1 + m2) + (m3 + m4) + (m5 + m6);
                Y1[t] = (m1 - m2) + 2.0f * (m3 - m4) + 0.5f * (m5 - m6) + m[7 * ms + t];
            }
            float *img = k->out + ((o * N + n) * (size_t)H) * W;
            if (along_w(d)) {
                float *dst = img + (size_t)yr * W;
                if (k->accumulate)
                    for (int x = 0; x < W; x++)
                        dst[x] += (x & 1) ? Y1[x >> 1] : Y0[x >> 1];
                else
                    for (int x = 0; x < W; x++)
                        dst[x] = (x & 1) ? Y1[x >> 1] : Y0[x >> 1];
            } else {
                float *d0 = img + (size_t)(2 * yr) * W;
                float *d1 = 2 * yr + 1 < H ? d0 + W : NULL;
                if (k->accumulate) {
                    for (int x = 0; x < W; x++)
                        d0[x] += Y0[x];
                    if (d1)
                        for (int x = 0; x < W; x++)
                            d1[x] += Y1[x];
                } else {
                    memcpy(d0, Y0, sizeof(float) * (size_t)W);
                    if (d1) memcpy(d1, Y1, sizeof(float) * (size_t)W);
                }
            }
        }
}

/* ---------- products and driver ---------- */

typedef struct {
    const float *u, *v; // U (8, OC, C), V (8, C, T)
    float *m;           // M (8, OC, T)
    int oc, c, t;       // dimensions of one product
} w7_prod_ctx;

static void products(void *arg, size_t x0, size_t x1)
{
    const w7_prod_ctx *p = arg;
    const size_t OC = (size_t)p->oc, C = (size_t)p->c, T = (size_t)p->t;
    for (size_t xi = x0; xi < x1; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->oc, p->t, p->c, 1.0f,
                    p->u + xi * OC * C, p->c, p->v + xi * C * T, p->t, 0.0f, p->m + xi * OC * T,
                    p->t);
}

void winograd7_conv(float *out, const float *in, const float *w, const conv2d_desc *d, float *ws,
                    int flip, int accumulate)
{
    const size_t OC = (size_t)d->oc, C = (size_t)d->c;
    const int tw = row_tiles(d), rows = d->n * image_rows(d), per = chunk_rows_b(d, 1);
    const size_t Tmax = (size_t)per * tw;
    float *u = ws, *v = u + al16(8 * OC * C), *mb = v + al16(8 * C * Tmax);
    w7_wt_ctx wk = {u, w, d->oc, d->c, flip};
    layers_parallel_for(OC, 8, weight_part, &wk);
    for (int r0 = 0; r0 < rows; r0 += per) {
        int r1 = r0 + per < rows ? r0 + per : rows;
        size_t T = (size_t)(r1 - r0) * tw;
        w7_chunk_ctx ik = {v, NULL, in, d, r0, r1, T, 0};
        layers_parallel_for(C, 4, input_part, &ik);
        w7_prod_ctx pk = {u, v, mb, d->oc, d->c, (int)T};
        layers_gemm_batch(8, products, &pk);
        w7_chunk_ctx ok = {mb, out, NULL, d, r0, r1, T, accumulate};
        layers_parallel_for(OC, 4, output_part, &ok);
    }
}
