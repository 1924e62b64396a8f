/* fuzz_jpeg — libFuzzer harness for JPEG loading (worker/data/image.c): a broken or
 * hostile image in a user's data set.
 *
 * The first input byte picks the min_short downscale hint; the rest is the
 * file. Checked: image_jpeg_size and image_decode_jpeg agree on acceptance of
 * the header; a decoded image has positive dimensions, a pixel buffer, and
 * the full header size when no downscale was asked for (at least min_short on
 * the shorter side, or the full size, otherwise); failures carry a message.
 * Decoded images then go through the evaluation preprocessing
 * (resize + center crop + normalise), whose reads the sanitizers watch. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "image.h"

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const int shorts[4] = {0, 8, 32, 100};
    int min_short = shorts[data[0] & 3];
    data++;
    size--;
    int hw = 0, hh = 0;
    char msg[256] = "";
    int hrc = image_jpeg_size(data, size, &hw, &hh, msg, sizeof msg);
    if (hrc != 0) {
        fz_need_msg(msg, "image_jpeg_size");
        if (hrc != ERR_DATA) abort();
    } else {
        if (hw <= 0 || hh <= 0) abort();
        /* Keep decodes small enough for the fuzzer's memory limit; the
         * decoder's own 2^28-pixel cap is covered by the unit tests. */
        if ((int64_t)hw * hh > (1 << 22)) return 0;
    }
    image_u8 im = {0};
    msg[0] = 0;
    int rc = image_decode_jpeg(data, size, min_short, &im, msg, sizeof msg);
    if (rc != 0) {
        fz_need_msg(msg, "image_decode_jpeg");
        if (rc != ERR_DATA && rc != ERR_TOOBIG && rc != ERR_NOMEM) abort();
        if (im.px) abort();
        return 0;
    }
    if (hrc != 0) {
        fprintf(stderr, "decoded an image whose header image_jpeg_size refused\n");
        abort();
    }
    if (im.w <= 0 || im.h <= 0 || !im.px) abort();
    if (min_short == 0 && (im.w != hw || im.h != hh)) {
        fprintf(stderr, "full-size decode gave %dx%d, header says %dx%d\n", im.w, im.h, hw, hh);
        abort();
    }
    if (im.w > hw || im.h > hh) abort();
    int short_full = hw < hh ? hw : hh;
    int short_got = im.w < im.h ? im.w : im.h;
    if (min_short > 0 && short_got < min_short && short_got != short_full) {
        fprintf(stderr, "downscaled below min_short %d: %dx%d from %dx%d\n", min_short, im.w, im.h,
                hw, hh);
        abort();
    }
    /* Touch every pixel (uninitialised bytes show up under MSan/valgrind). */
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)im.w * im.h * 3; i++)
        sum += im.px[i];
    (void)sum;
    uint8_t crop[16 * 16 * 3];
    if (image_resize_center_crop(&im, 18, 16, crop) != 0) abort();
    float norm[3 * 16 * 16];
    image_normalize(crop, 16, 16, NULL, norm);
    image_free(&im);
    if (im.px || im.w || im.h) abort();
    return 0;
}
