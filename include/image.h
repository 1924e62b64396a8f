/* image — JPEG decoding, antialiased resizing, cropping, normalisation and
 * training augmentation for 8-bit RGB images.
 *
 * Shared by the training data pipeline (dataset.h) and `sweep-worker predict`
 * so both see exactly the same pixels. Conventions (torchvision's):
 *  - evaluation preprocessing = resize the shorter side to
 *    image_eval_size(input_size) = round(input_size / 0.875) (256 for 224),
 *    the longer side to floor(size * long / short), then a center crop of
 *    input_size x input_size with offsets round((H - crop) / 2);
 *  - pixels are scaled to [0, 1] and normalised with a mean and std per
 *    channel (image_norm): the weights' own (weights_meta.h) when they carry
 *    them, else the ImageNet mean (0.485, 0.456, 0.406) and std (0.229,
 *    0.224, 0.225); NULL for an image_norm argument means ImageNet's. The
 *    evaluation view of training, validation, `eval` and `predict` is one
 *    path: the stored square of image_eval_square, then image_eval_view;
 *  - tensors are float32 NCHW, channel order R, G, B.
 * Pixel buffers here are interleaved RGB bytes, row-major: (H, W, 3).
 *
 * Decoding (worker/data/image.c) uses the TurboJPEG API of libjpeg-turbo: baseline
 * and progressive JPEGs, grayscale expanded to 3 equal channels, CMYK/YCCK
 * converted to RGB assuming Adobe-style inverted CMYK as Photoshop writes it
 * (what Pillow assumes too). When the source is at least twice the needed
 * size the decoder downscales in the DCT domain (by 1/2, 1/4 or 1/8) first.
 * Resizing (worker/data/resize.c) is a separable triangle (bilinear) filter whose
 * support widens with the scale factor when shrinking, like Pillow's
 * Image.resize(BILINEAR), so downscaling is antialiased.
 * Augmentation (worker/data/augment.c) is one affine warp per image plus colour
 * jitter, driven only by an rng_t the caller seeds, so it is deterministic. */
#ifndef SWEEP_IMAGE_H
#define SWEEP_IMAGE_H

#include "rng.h"
#include "weights_meta.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ImageNet normalisation constants, R, G, B. */
extern const float image_mean[3];
extern const float image_std[3];

/* A normalisation: (v/255 - mean[c]) / std[c] per channel. */
typedef struct {
    float mean[3]; // per channel, R, G, B, on the 0..1 scale
    float std[3];  // per channel, each > 0
} image_norm;

/* ImageNet's normalisation (image_mean, image_std). */
extern const image_norm image_norm_imagenet;

/* The normalisation weights metadata M gives (its mean and std, which are
 * ImageNet's where the file has none). */
image_norm image_norm_of(const weights_meta *m);

/* LUT[c][v] = ((float)v / 255 - mean[c]) / std[c] for N (NULL: ImageNet's):
 * the one formula of every evaluation view and image_normalize. */
void image_norm_lut(const image_norm *n, float lut[3][256]);

/* An 8-bit RGB image. */
typedef struct {
    int w;       // width in pixels
    int h;       // height in pixels
    uint8_t *px; // (h, w, 3) interleaved RGB, row-major; owned (free with image_free)
} image_u8;

/* Frees IM->px and zeroes IM. Safe on a zeroed struct. */
void image_free(image_u8 *im);

/* The evaluation resize size for INPUT_SIZE: round(input_size / 0.875),
 * e.g. 256 for 224, 37 for 32. This is also the side of the square images
 * stored in the decoded cache (dataset.h). */
int image_eval_size(int input_size);

/* ---- decoding ---------------------------------------------------------- */

/* Decodes the JPEG in BUF (LEN bytes) into OUT (caller frees with
 * image_free). When MIN_SHORT > 0 the decoder may downscale in the DCT domain
 * by the largest factor (1/2, 1/4, 1/8) that keeps the shorter side >=
 * MIN_SHORT; the result is then at least MIN_SHORT on its shorter side unless
 * the source itself is smaller. MIN_SHORT = 0 decodes at full size.
 * Returns 0, ERR_DATA for anything that is not a decodable JPEG (empty,
 * truncated, corrupt, unsupported; the reason in msg), ERR_TOOBIG for images
 * over 2^28 pixels, ERR_NOMEM. Thread-safe (a decoder handle per thread). */
int image_decode_jpeg(const uint8_t *buf, size_t len, int min_short, image_u8 *out, char *msg,
                      size_t msglen);

/* Reads PATH and decodes it as image_decode_jpeg does. ERR_IO when the file
 * cannot be read, ERR_DATA when it is empty or not a decodable JPEG; msg
 * names PATH. */
int image_load_jpeg(const char *path, int min_short, image_u8 *out, char *msg, size_t msglen);

/* The file of the libjpeg-turbo (TurboJPEG) library this process loaded,
 * as the dynamic loader names it, or NULL when none is found (a static
 * build); static string. TurboJPEG 2 has no call that tells its version:
 * the file's content identifies it (the feature cache hashes it). */
const char *image_jpeg_library(void);

/* Reads only the header of the JPEG in BUF: dimensions of the full-size
 * image. 0 or ERR_DATA. */
int image_jpeg_size(const uint8_t *buf, size_t len, int *w, int *h, char *msg, size_t msglen);

/* ---- resizing and cropping --------------------------------------------- */

/* Resizes the region [X0, X1) x [Y0, Y1) of SRC (SW x SH, RGB, in source
 * pixel units, may be fractional) to DST (DW x DH, RGB, caller-allocated
 * DW*DH*3 bytes) with an antialiased triangle filter (Pillow's
 * Image.resize(size, BILINEAR, box=...) semantics: the filter may read
 * pixels outside the box but inside the image). The region must lie inside
 * the image and have positive size. Returns 0 or ERR_NOMEM (scratch space). */
int image_resize_region(const uint8_t *src, int sw, int sh, double x0, double y0, double x1,
                        double y1, uint8_t *dst, int dw, int dh);

/* Chooses the horizontal pass: SIMD (SSE4.1, used by default when the CPU
 * has it) or the portable scalar loop. Both give identical bytes; this
 * exists so tests can compare them. Not thread-safe against running resizes. */
void image_resize_set_simd(bool on);

/* Whole-image resize: image_resize_region with the full source box. */
int image_resize(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);

/* The torchvision "Resize(short) + CenterCrop(crop)" of a SW x SH image
 * expressed as a source box: after the call the region [x0,x1) x [y0,y1) of
 * the source, resized to CROP x CROP, equals resizing the whole image so its
 * shorter side is SHORT and then cropping CROP x CROP at the center. Requires
 * CROP <= SHORT. */
void image_center_box(int sw, int sh, int short_side, int crop, double *x0, double *y0, double *x1,
                      double *y1);

/* Evaluation view of IM: resize the shorter side to SHORT, center crop CROP
 * into DST (CROP*CROP*3 bytes, caller-allocated). 0 or ERR_NOMEM. */
int image_resize_center_crop(const image_u8 *im, int short_side, int crop, uint8_t *dst);

/* ---- normalisation ----------------------------------------------------- */

/* Converts RGB bytes SRC (H, W, 3) to float DST (3, H, W): (v/255 - mean)/std
 * per channel with NORM (NULL: ImageNet's). DST holds 3*W*H floats. */
void image_normalize(const uint8_t *src, int w, int h, const image_norm *norm, float *dst);

/* ---- the stored square and one-call preprocessing ----------------------- */

/* Decodes the JPEG in BUF (LEN bytes) into the stored square of side SIDE
 * (image_eval_size of the input size): the shorter side resized to SIDE,
 * center-cropped to SIDE x SIDE, RGB bytes into DST (SIDE*SIDE*3,
 * caller-allocated). What the data sets store per image (dataset.h) and
 * what predict starts from, so both see the same bytes. Errors as
 * image_decode_jpeg. */
int image_eval_square(const uint8_t *buf, size_t len, int side, uint8_t *dst, char *msg,
                      size_t msglen);

/* Loads the JPEG at PATH and writes the evaluation view as normalised
 * float32 (3, INPUT_SIZE, INPUT_SIZE) into OUT (caller-allocated), exactly
 * as a data set's evaluation batch holds it: image_eval_square at side
 * image_eval_size(INPUT_SIZE), then image_eval_view with NORM (NULL:
 * ImageNet's). With RAW the image is not resized or cropped and must
 * already be INPUT_SIZE square (ERR_DATA otherwise, naming both sizes).
 * Errors as image_load_jpeg. */
int image_preprocess_file(const char *path, int input_size, const image_norm *norm, bool raw,
                          float *out, char *msg, size_t msglen);

/* ---- training augmentation (worker/data/augment.c) -------------------------- */

/* Augmentation settings; image_augment_defaults() fills the documented ones. */
typedef struct {
    double scale_min, scale_max; // random resized crop: area fraction of the source, (0.35, 1)
    double ratio_min, ratio_max; // aspect ratio range of the crop box, (3/4, 4/3)
    double flip_p;               // horizontal flip probability, 0.5
    double rotate_deg;           // rotation uniform in [-rotate_deg, +rotate_deg], 10
    double brightness;           // brightness factor uniform in [1-b, 1+b], 0.2
    double contrast;             // contrast factor uniform in [1-c, 1+c], 0.2
    int small_input;             // input_size <= small_input uses pad-and-crop, 64
    int pad;                     // pad-and-crop: translation up to +-pad pixels, 4
    double erase_p;              // random erasing probability, 0 (off); "erase": 0.5
    double erase_scale_min, erase_scale_max; // erased area fraction of the view, (0.02, 0.33)
    double erase_ratio_min, erase_ratio_max; // erased box aspect ratio (h / w), (0.3, 3.3)
} augment_opts;

void image_augment_defaults(augment_opts *o);
/* The `augment: "light"` settings: the defaults' crop (or pad-and-crop) and
 * flip, without rotation or colour jitter. image_augment draws the same
 * random numbers either way (the unused draws are made with empty ranges). */
void image_augment_light(augment_opts *o);
/* The `augment: "erase"` settings: "light" plus random erasing with
 * probability 0.5 (torchvision RandomErasing's defaults otherwise). */
void image_augment_erase(augment_opts *o);

/* Writes one augmented training view of SRC (a SS x SS cached square, RGB)
 * as normalised float32 (3, OUT_SIZE, OUT_SIZE) into OUT, drawing every
 * random choice from R (fixed number of draws per call, so the stream is
 * reproducible). Steps:
 *  - OUT_SIZE > o->small_input: a random resized crop (area fraction in
 *    [scale_min, scale_max] of the square, aspect ratio log-uniform in
 *    [ratio_min, ratio_max], up to 10 tries then the whole square), resized
 *    to OUT_SIZE; OUT_SIZE <= small_input: the evaluation center crop shifted
 *    by a random integer offset in [-pad, pad] on each axis (pad-and-crop;
 *    real pixels are used where the cached square has them);
 *  - horizontal flip with probability flip_p; rotation about the crop center
 *    by a uniform angle in [-rotate_deg, rotate_deg] (all three folded into
 *    one bilinear affine warp); pixels falling outside the source take the
 *    mean colour of NORM, i.e. 0 after normalisation;
 *  - brightness then contrast jitter (contrast blends with the mean gray of
 *    the view, as torchvision), values clamped to [0, 1], then normalised
 *    with NORM (NULL: ImageNet's);
 *  - with erase_p > 0: with that probability one rectangle of the view
 *    (area fraction uniform in [erase_scale_min, erase_scale_max], aspect
 *    ratio h/w log-uniform in [erase_ratio_min, erase_ratio_max], each side
 *    clamped to the view, position uniform) is set to 0, the normalised mean
 *    colour, in every channel. This draws five more numbers whether or not
 *    it erases; with erase_p == 0 nothing more is drawn, so "light" and the
 *    defaults keep their streams.
 * O NULL means the defaults. */
void image_augment(const uint8_t *src, int ss, int out_size, const augment_opts *o,
                   const image_norm *norm, rng_t *r, float *out);

/* The evaluation view of a cached square: the center OUT_SIZE crop of SRC
 * (SS x SS, RGB), normalised with NORM (NULL: ImageNet's; image_norm_lut)
 * into OUT (3, OUT_SIZE, OUT_SIZE). Requires OUT_SIZE <= SS. Offsets follow
 * torchvision (round((SS - OUT_SIZE) / 2)). */
void image_eval_view(const uint8_t *src, int ss, int out_size, const image_norm *norm, float *out);

#endif
