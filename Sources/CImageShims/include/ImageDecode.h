#ifndef LEAKLESS_IMAGE_DECODE_H
#define LEAKLESS_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

// What leakless_image_decode produces, chosen by flags.
enum {
    // 8-bit grey (1 channel) or RGB (3 channels) pixels, rows packed.
    LEAKLESS_DECODE_PIXELS = 1,
    // The luma plane as Pillow's convert("L") computes it: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
    LEAKLESS_DECODE_LUMA = 2,
    // XXH3-128 of the decoded size and the rows as RGB (grey expanded), so a PNG and its lossless
    // re-encoding, in any colour type, get the same digest.
    LEAKLESS_DECODE_DIGEST = 4,
    // JPEG: ask libjpeg for its Y channel instead of RGB (no chroma upsampling or colour
    // conversion); only luma and digest are then available, and the digest differs from a colour one.
    LEAKLESS_DECODE_JPEG_GREY = 8,
    // PNG: zlib's Adler-32 of the inflated data is not checked. The chunk CRCs still cover every
    // compressed byte, so a damaged file is still refused.
    LEAKLESS_DECODE_SKIP_ADLER32 = 16,
    // PNG: the chunk CRCs are not checked either (for measurement: damage may then go unseen).
    LEAKLESS_DECODE_SKIP_CRC = 32,
    // PNG: the luma plane averaged over 8x8, 4x4 or 2x2 blocks, the largest that keeps both sides
    // at least `min_side`: what JPEG's DCT scaling does, at a fraction of a full resize's cost.
    LEAKLESS_DECODE_LUMA_BOX = 64,
};

enum { LEAKLESS_FORMAT_PNG = 1, LEAKLESS_FORMAT_JPEG = 2 };

// Error kinds, so the caller can give a reject its reason.
enum { LEAKLESS_DECODE_CORRUPT = -1, LEAKLESS_DECODE_TOO_LARGE = -2, LEAKLESS_DECODE_NOT_AN_IMAGE = -3 };

typedef struct {
    uint8_t *pixels;
    uint8_t *luma;
    // What was decoded, after DCT scaling.
    uint32_t width;
    uint32_t height;
    uint32_t channels;
    // The luma plane's size (smaller than width x height after a box reduction).
    uint32_t luma_width;
    uint32_t luma_height;
    // What the file declares.
    uint32_t source_width;
    uint32_t source_height;
    uint32_t format;
    uint32_t had_alpha;
    uint64_t digest_high;
    uint64_t digest_low;
} leakless_image;

// Decodes a PNG (any bit depth, colour type or interlace) or a JPEG (baseline, progressive,
// grey, CMYK, YCCK) held in memory. `scale_denom` (1, 2, 4 or 8) asks libjpeg-turbo for a
// DCT-scaled decode; a non-zero `min_side` instead picks the smallest scale whose sides are still
// at least that long, and with LEAKLESS_DECODE_LUMA_BOX picks a PNG's luma reduction the same way. Alpha is composited onto white. 16-bit samples keep their
// high byte, as Pillow does. Gamma and colour profiles are ignored, as Pillow does. Adobe
// CMYK is converted to RGB with Pillow's arithmetic. Images declaring more than `max_pixels`
// pixels are refused before any pixel buffer is allocated. libjpeg's and libpng's errors
// arrive by longjmp and are caught here; libjpeg's warnings (a truncated file padded with grey)
// count as errors. Returns 0, or one of the error kinds with `message` set.
int leakless_image_decode(const uint8_t *data, size_t size, int scale_denom, uint32_t min_side, uint32_t flags,
                          uint64_t max_pixels,
                          leakless_image *out, char *message, size_t message_size);

void leakless_image_free(leakless_image *image);

#endif

#ifndef LEAKLESS_JPEG_ENCODE_H
#define LEAKLESS_JPEG_ENCODE_H
// Encodes 8-bit grey (1 channel) or RGB (3) pixels as a baseline JPEG in memory, at `quality`
// (1-100). On success *out holds the bytes (free with leakless_buffer_free) and 0 is returned;
// -1 with `message` set otherwise.
int leakless_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, uint32_t channels, int quality,
                         uint8_t **out, size_t *out_size, char *message, size_t message_size);
void leakless_buffer_free(uint8_t *buffer);
#endif
