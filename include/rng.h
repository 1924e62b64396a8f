/* rng — seeded deterministic random numbers (xoshiro256** seeded by splitmix64).
 *
 * The same seed gives the same stream on every machine and build: only integer
 * arithmetic plus libm log/sqrt/cos where noted. Trials, data shuffles and
 * augmentation draw from separate streams derived with rng_derive() so adding
 * one draw somewhere never shifts another stream. The state is a plain struct
 * that can be saved in a checkpoint and restored byte for byte. */
#ifndef SWEEP_RNG_H
#define SWEEP_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4]; // xoshiro256** state; never all zero
} rng_t;

/* Seeds R from SEED through splitmix64. */
void rng_seed(rng_t *r, uint64_t seed);
/* A seed for an independent stream: a hash of SEED and STREAM (splitmix64 mixing). */
uint64_t rng_derive(uint64_t seed, uint64_t stream);
uint64_t rng_next(rng_t *r);
/* Uniform double in [0, 1) with 53 random bits. */
double rng_uniform(rng_t *r);
/* Uniform float in [0, 1) with 24 random bits. */
float rng_uniform_f(rng_t *r);
/* Uniform in [a, b). */
double rng_range(rng_t *r, double a, double b);
/* exp(uniform in [log a, log b)); requires 0 < a <= b. */
double rng_log_uniform(rng_t *r, double a, double b);
/* Integer uniform in [lo, hi] inclusive, without modulo bias; requires lo <= hi. */
int64_t rng_int(rng_t *r, int64_t lo, int64_t hi);
/* Standard normal (Box-Muller; consumes two draws per call, no cached value). */
double rng_normal(rng_t *r);
/* Fisher-Yates shuffle of N elements of SIZE bytes each. */
void rng_shuffle(rng_t *r, void *base, size_t n, size_t size);

#endif
