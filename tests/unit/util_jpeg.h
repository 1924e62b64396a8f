/* test_util_jpeg — helpers for unit tests that need JPEG files: synthetic
 * images, TurboJPEG encoding (RGB, grayscale, Adobe CMYK, progressive),
 * scratch folders. Implemented in tests/unit/util_jpeg.c, which is linked
 * into every unit test; test-only, never part of libsweep. */
#ifndef SWEEP_TEST_UTIL_JPEG_H
#define SWEEP_TEST_UTIL_JPEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    TJU_RGB = 0, // PX is (h, w, 3) RGB
    TJU_GRAY,    // PX is (h, w) gray
    TJU_CMYK,    // PX is (h, w, 4) Adobe-inverted CMYK (255 = no ink), stored as YCCK
} tju_kind;

/* Fills RGB (h, w, 3) with a smooth pattern that depends on SEED. */
void tju_pattern(uint8_t *rgb, int w, int h, unsigned seed);

/* Encodes PX as a JPEG (quality Q, 4:4:4 unless gray; PROGRESSIVE for a
 * progressive file). Returns a malloc'ed buffer and its size in *LEN, NULL
 * on failure. */
uint8_t *tju_encode(const uint8_t *px, int w, int h, tju_kind kind, int q, bool progressive,
                    size_t *len);

/* tju_encode, then writes the file PATH. 0 or -1. */
int tju_write_jpeg(const char *path, const uint8_t *px, int w, int h, tju_kind kind, int q,
                   bool progressive);

/* Writes LEN bytes of BUF to PATH (creating parent folders). 0 or -1. */
int tju_write_bytes(const char *path, const void *buf, size_t len);

/* A pattern image of W x H (seed SEED) written as an RGB JPEG at PATH,
 * creating parent folders. 0 or -1. */
int tju_write_pattern(const char *path, int w, int h, unsigned seed);

/* mkdir -p. 0 or -1. */
int tju_mkdirs(const char *path);

/* A new scratch folder under $TMPDIR or /tmp, named sweep-TAG-XXXXXX, as a
 * physical path (no symbolic links: what realpath gives back); the caller
 * frees the string and removes the folder with tju_rmrf. NULL on failure. */
char *tju_tmpdir(const char *tag);

/* tju_tmpdir into BUF of LEN bytes. 0, or -1 (nothing left behind) when the
 * folder cannot be made or its path does not fit. */
int tju_mkdtemp(char *buf, size_t len, const char *tag);

/* rm -rf PATH (does not follow symbolic links). */
void tju_rmrf(const char *path);

#endif
