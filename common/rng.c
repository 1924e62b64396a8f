/* rng — xoshiro256** (Blackman & Vigna) seeded through splitmix64.
 *
 * Everything that must be reproducible across machines (trial parameters,
 * seeds, data order, augmentation) draws from here. Integer ranges use
 * rejection sampling, so rng_int is exactly uniform; doubles take the top 53
 * bits. rng_derive gives independent stream seeds: for a fixed seed it is a
 * bijection of the stream number, so two streams never share a seed. */
#include "rng.h"

#include "log.h"

#include <math.h>
#include <string.h>

#define GOLDEN 0x9e3779b97f4a7c15ULL

/* The splitmix64 output function (a bijection of 64-bit values). */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t splitmix64_next(uint64_t *x)
{
    *x += GOLDEN;
    return mix64(*x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void rng_seed(rng_t *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64_next(&x);
    /* Four consecutive splitmix64 outputs are never all zero, but the state
     * must not be, so make sure. */
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) r->s[0] = GOLDEN;
}

uint64_t rng_derive(uint64_t seed, uint64_t stream)
{
    return mix64(mix64(seed) + (stream + 1) * GOLDEN);
}

uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

float rng_uniform_f(rng_t *r)
{
    return (float)(rng_next(r) >> 40) * 0x1.0p-24f;
}

double rng_range(rng_t *r, double a, double b)
{
    double x = a + (b - a) * rng_uniform(r);
    /* Rounding can land exactly on b; the interval is half-open. */
    if (b > a && x >= b) x = nextafter(b, a);
    return x;
}

double rng_log_uniform(rng_t *r, double a, double b)
{
    SWEEP_ASSERT(a > 0 && a <= b);
    double u = rng_uniform(r);
    if (a == b) return a;
    double la = log(a), lb = log(b);
    double x = exp(la + (lb - la) * u);
    if (x < a) x = a;
    if (x >= b) x = nextafter(b, a);
    return x;
}

int64_t rng_int(rng_t *r, int64_t lo, int64_t hi)
{
    SWEEP_ASSERT(lo <= hi);
    uint64_t span = (uint64_t)hi - (uint64_t)lo; /* number of values - 1 */
    if (span == UINT64_MAX) return (int64_t)rng_next(r);
    uint64_t n = span + 1;
    /* Reject the lowest (2^64 mod n) values so that what remains is an exact
     * multiple of n. */
    uint64_t threshold = (0 - n) % n;
    uint64_t x;
    do {
        x = rng_next(r);
    } while (x < threshold);
    return (int64_t)((uint64_t)lo + x % n);
}

double rng_normal(rng_t *r)
{
    double u1 = 1.0 - rng_uniform(r); /* (0, 1], so log is finite */
    double u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void rng_shuffle(rng_t *r, void *base, size_t n, size_t size)
{
    if (n < 2 || size == 0) return;
    unsigned char *p = base;
    unsigned char tmp[64];
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rng_int(r, 0, (int64_t)i);
        if (j == i) continue;
        unsigned char *a = p + i * size, *b = p + j * size;
        for (size_t off = 0; off < size; off += sizeof tmp) {
            size_t c = size - off < sizeof tmp ? size - off : sizeof tmp;
            memcpy(tmp, a + off, c);
            memcpy(a + off, b + off, c);
            memcpy(b + off, tmp, c);
        }
    }
}
