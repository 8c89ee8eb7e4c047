#include "ImageDecode.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <png.h>
#include <xxhash.h>

// What every row goes through, whichever decoder made it: alpha compositing, the pixel rows, the
// luma plane and the digest.
typedef struct {
    uint32_t flags;
    uint32_t width;
    uint32_t height;
    uint32_t channels;  // of the output pixels: 1 or 3
    uint8_t *pixels;
    uint8_t *luma;
    uint8_t *scratch;   // one RGB row: composited colour, or grey expanded for the digest
    XXH3_state_t *digest;
    // Luma reduced by box averaging: `box` x `box` blocks (1: none), the block sums of the
    // current band of rows, and one luma row before it is summed.
    uint32_t box;
    uint32_t luma_width;
    uint32_t luma_height;
    uint32_t *sums;
    uint8_t *luma_row;
} row_sink;

static inline uint8_t over_white(unsigned value, unsigned alpha) {
    return (uint8_t)((value * alpha + 255u * (255u - alpha) + 127u) / 255u);
}

static inline uint8_t luma_of(unsigned r, unsigned g, unsigned b) {
    return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

static void sink_release(row_sink *sink) {
    if (!sink) return;
    free(sink->pixels);
    free(sink->luma);
    free(sink->scratch);
    free(sink->sums);
    free(sink->luma_row);
    if (sink->digest) XXH3_freeState(sink->digest);
    free(sink);
}

// Written over plain pointers and a size_t count so that the compiler vectorises it.
static void rgb_to_luma(uint8_t *restrict target, const uint8_t *restrict rgb, size_t width) {
    for (size_t x = 0; x < width; x++) {
        target[x] = luma_of(rgb[0], rgb[1], rgb[2]);
        rgb += 3;
    }
}

// NULL when memory runs out.
// The largest of 8, 4, 2 whose reduction (sides rounded up) keeps both sides at least min_side;
// 1 when none does. The same rule picks the JPEG DCT scale.
static uint32_t reduction_for(uint32_t width, uint32_t height, uint32_t min_side) {
    if (min_side == 0) return 1;
    uint32_t factor = 8;
    while (factor > 1 && ((width + factor - 1) / factor < min_side || (height + factor - 1) / factor < min_side)) factor /= 2;
    return factor;
}

static row_sink *sink_open(uint32_t flags, uint32_t width, uint32_t height, uint32_t channels,
                           uint32_t source_width, uint32_t source_height, uint32_t grey_only, uint32_t box) {
    row_sink *sink = calloc(1, sizeof *sink);
    if (!sink) return NULL;
    sink->flags = flags;
    sink->width = width;
    sink->height = height;
    sink->channels = channels;
    sink->box = box;
    sink->luma_width = (width + box - 1) / box;
    sink->luma_height = (height + box - 1) / box;
    size_t count = (size_t)width * height;
    if (flags & LEAKLESS_DECODE_PIXELS) sink->pixels = malloc(count * channels);
    if (flags & LEAKLESS_DECODE_LUMA) sink->luma = malloc((size_t)sink->luma_width * sink->luma_height);
    sink->scratch = malloc((size_t)width * 3);
    if ((flags & LEAKLESS_DECODE_LUMA) && box > 1) {
        sink->sums = calloc(sink->luma_width, sizeof(uint32_t));
        sink->luma_row = malloc(width);
        if (!sink->sums || !sink->luma_row) {
            sink_release(sink);
            return NULL;
        }
    }
    if (flags & LEAKLESS_DECODE_DIGEST) {
        sink->digest = XXH3_createState();
        if (sink->digest) {
            XXH3_128bits_reset(sink->digest);
            uint32_t header[5] = {width, height, source_width, source_height, grey_only};
            XXH3_128bits_update(sink->digest, header, sizeof header);
        }
    }
    if (((flags & LEAKLESS_DECODE_PIXELS) && !sink->pixels) || ((flags & LEAKLESS_DECODE_LUMA) && !sink->luma) ||
        !sink->scratch || ((flags & LEAKLESS_DECODE_DIGEST) && !sink->digest)) {
        sink_release(sink);
        return NULL;
    }
    return sink;
}

// Adds a luma row to its band's block sums; the band's last row writes the block averages.
static void sink_box_row(row_sink *sink, uint32_t y, const uint8_t *luma) {
    uint32_t box = sink->box, width = sink->width;
    for (uint32_t block = 0; block < sink->luma_width; block++) {
        uint32_t start = block * box, end = start + box < width ? start + box : width, sum = 0;
        for (uint32_t x = start; x < end; x++) sum += luma[x];
        sink->sums[block] += sum;
    }
    if ((y + 1) % box != 0 && y + 1 != sink->height) return;
    uint32_t rows = y % box + 1;
    uint8_t *target = sink->luma + (size_t)(y / box) * sink->luma_width;
    for (uint32_t block = 0; block < sink->luma_width; block++) {
        uint32_t start = block * box, end = start + box < width ? start + box : width;
        uint32_t count = (end - start) * rows;
        target[block] = (uint8_t)((sink->sums[block] + count / 2) / count);
        sink->sums[block] = 0;
    }
}

// One decoded row of `in_channels` samples per pixel: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
static void sink_row(row_sink *sink, uint32_t y, const uint8_t *row, uint32_t in_channels) {
    uint32_t width = sink->width;
    const uint8_t *colour = row;  // rows of `channels` samples, alpha composited
    if (in_channels == 2 || in_channels == 4) {
        uint8_t *target = sink->scratch;
        uint32_t samples = in_channels - 1;
        for (uint32_t x = 0; x < width; x++) {
            unsigned alpha = row[x * in_channels + samples];
            for (uint32_t c = 0; c < samples; c++) target[x * samples + c] = over_white(row[x * in_channels + c], alpha);
        }
        colour = target;
    }
    if (sink->pixels) memcpy(sink->pixels + (size_t)y * width * sink->channels, colour, (size_t)width * sink->channels);
    if (sink->luma && sink->box == 1) {
        uint8_t *target = sink->luma + (size_t)y * width;
        if (sink->channels == 1) {
            memcpy(target, colour, width);
        } else {
            rgb_to_luma(target, colour, width);
        }
    } else if (sink->luma) {
        const uint8_t *luma = colour;
        if (sink->channels == 3) {
            rgb_to_luma(sink->luma_row, colour, width);
            luma = sink->luma_row;
        }
        sink_box_row(sink, y, luma);
    }
    if (sink->digest) {
        if (sink->channels == 1) {
            // colour may be the scratch row itself (grey+alpha): expand from the back.
            uint8_t *expanded = sink->scratch;
            for (uint32_t x = width; x-- > 0;) {
                uint8_t v = colour[x];
                expanded[3 * x] = v;
                expanded[3 * x + 1] = v;
                expanded[3 * x + 2] = v;
            }
            XXH3_128bits_update(sink->digest, expanded, (size_t)width * 3);
        } else {
            XXH3_128bits_update(sink->digest, colour, (size_t)width * 3);
        }
    }
}

static void sink_finish(row_sink *sink, leakless_image *out) {
    if (sink->digest) {
        XXH128_hash_t hash = XXH3_128bits_digest(sink->digest);
        out->digest_high = hash.high64;
        out->digest_low = hash.low64;
    }
    out->pixels = sink->pixels;
    out->luma = sink->luma;
    out->luma_width = sink->luma_width;
    out->luma_height = sink->luma_height;
    out->channels = sink->channels;
    sink->pixels = NULL;
    sink->luma = NULL;
    sink_release(sink);
}

// ---- JPEG ----

struct jpeg_failure {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char *message;
    size_t message_size;
};

static void jpeg_fail(j_common_ptr cinfo) {
    struct jpeg_failure *failure = (struct jpeg_failure *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    snprintf(failure->message, failure->message_size, "%s", buffer);
    longjmp(failure->jump, 1);
}

// Warnings (a truncated file that libjpeg pads with grey, damaged entropy data) become errors: a
// damaged image must be rejected, not hashed as if it were whole.
static void jpeg_warn(j_common_ptr cinfo, int level) {
    if (level < 0) jpeg_fail(cinfo);
}

static inline uint8_t muldiv255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static int decode_jpeg(const uint8_t *data, size_t size, int scale_denom, uint32_t min_side, uint32_t flags,
                       uint64_t max_pixels,
                       leakless_image *out, char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_failure failure;
    // volatile: these change between setjmp and a possible longjmp.
    JSAMPLE *volatile row = NULL;
    uint8_t *volatile rgb = NULL;
    row_sink *volatile sink = NULL;
    cinfo.err = jpeg_std_error(&failure.base);
    failure.base.error_exit = jpeg_fail;
    failure.base.emit_message = jpeg_warn;
    failure.message = message;
    failure.message_size = message_size;
    if (setjmp(failure.jump)) {
        free(row);
        free(rgb);
        sink_release(sink);
        jpeg_destroy_decompress(&cinfo);
        return LEAKLESS_DECODE_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    out->source_width = cinfo.image_width;
    out->source_height = cinfo.image_height;
    if ((uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height > max_pixels) {
        snprintf(message, message_size, "declared size %ux%u exceeds the limit of %llu pixels", cinfo.image_width,
                 cinfo.image_height, (unsigned long long)max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return LEAKLESS_DECODE_TOO_LARGE;
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    int grey_source = cinfo.jpeg_color_space == JCS_GRAYSCALE;
    int grey_only = !grey_source && !cmyk && (flags & LEAKLESS_DECODE_JPEG_GREY);
    if (cmyk) {
        cinfo.out_color_space = JCS_CMYK;
    } else if (grey_source || grey_only) {
        cinfo.out_color_space = JCS_GRAYSCALE;
    } else {
        cinfo.out_color_space = JCS_RGB;
    }
    if (grey_only) flags &= ~(uint32_t)LEAKLESS_DECODE_PIXELS;
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned)(scale_denom == 2 || scale_denom == 4 || scale_denom == 8 ? scale_denom : 1);
    if (min_side > 0) cinfo.scale_denom = reduction_for(cinfo.image_width, cinfo.image_height, min_side);
    jpeg_start_decompress(&cinfo);
    uint32_t width = cinfo.output_width, height = cinfo.output_height;
    uint32_t channels = cinfo.out_color_space == JCS_GRAYSCALE ? 1 : 3;
    row = malloc((size_t)width * (size_t)cinfo.output_components);
    if (cmyk) rgb = malloc((size_t)width * 3);
    sink = sink_open(flags, width, height, channels, out->source_width, out->source_height, grey_only, 1);
    if (row == NULL || sink == NULL || (cmyk && rgb == NULL)) {
        snprintf(message, message_size, "out of memory for a %ux%u image", width, height);
        free(row);
        free(rgb);
        sink_release(sink);
        jpeg_destroy_decompress(&cinfo);
        return LEAKLESS_DECODE_CORRUPT;
    }
    while (cinfo.output_scanline < height) {
        JSAMPROW rows[1] = {row};
        uint32_t y = cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, rows, 1);
        if (cmyk) {
            // Adobe stores CMYK inverted; Pillow's cmyk2rgb on the true values: R = (255-K) - C*(255-K)/255.
            for (uint32_t x = 0; x < width; x++) {
                unsigned nk = row[4 * x + 3];
                for (int c = 0; c < 3; c++) rgb[3 * x + c] = (uint8_t)(nk - muldiv255(255u - row[4 * x + c], nk));
            }
            sink_row(sink, y, rgb, 3);
        } else {
            sink_row(sink, y, row, channels);
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(rgb);
    free(row);
    out->format = LEAKLESS_FORMAT_JPEG;
    out->width = width;
    out->height = height;
    sink_finish(sink, out);
    return 0;
}

// ---- PNG ----

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
    char *message;
    size_t message_size;
} png_source;

static void png_fail(png_structp png, png_const_charp text) {
    png_source *source = png_get_error_ptr(png);
    snprintf(source->message, source->message_size, "%s", text);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void png_read_memory(png_structp png, png_bytep target, png_size_t length) {
    png_source *source = png_get_io_ptr(png);
    if (length > source->size - source->offset) png_error(png, "the file ends early");
    memcpy(target, source->data + source->offset, length);
    source->offset += length;
}

static int decode_png(const uint8_t *data, size_t size, uint32_t min_side, uint32_t flags, uint64_t max_pixels,
                      leakless_image *out, char *message, size_t message_size) {
    png_source source = {data, size, 0, message, message_size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, png_fail, png_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        snprintf(message, message_size, "out of memory");
        png_destroy_read_struct(&png, &info, NULL);
        return LEAKLESS_DECODE_CORRUPT;
    }
    // volatile: these change between setjmp and a possible longjmp.
    uint8_t *volatile rows = NULL;
    png_bytep *volatile pointers = NULL;
    row_sink *volatile sink = NULL;
    volatile int status = LEAKLESS_DECODE_CORRUPT;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(pointers);
        sink_release(sink);
        png_destroy_read_struct(&png, &info, NULL);
        return status;
    }
    png_set_read_fn(png, &source, png_read_memory);
    if (flags & LEAKLESS_DECODE_SKIP_CRC) png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#ifdef PNG_IGNORE_ADLER32
    if (flags & LEAKLESS_DECODE_SKIP_ADLER32) png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
    png_read_info(png, info);
    uint32_t width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    out->source_width = width;
    out->source_height = height;
    if ((uint64_t)width * height > max_pixels) {
        char text[160];
        snprintf(text, sizeof text, "declared size %ux%u exceeds the limit of %llu pixels", width, height,
                 (unsigned long long)max_pixels);
        status = LEAKLESS_DECODE_TOO_LARGE;
        png_error(png, text);
    }
    int colour_type = png_get_color_type(png, info);
    png_set_expand(png);  // palette to RGB, grey below 8 bits to 8, tRNS to alpha
    png_set_strip_16(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    uint32_t in_channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (in_channels < 1 || in_channels > 4 || rowbytes != (size_t)width * in_channels) png_error(png, "unexpected row layout");
    uint32_t channels = (colour_type & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    out->had_alpha = in_channels == 2 || in_channels == 4;
    // Interlaced images are complete only after the last pass: they need the whole image at once.
    rows = malloc(passes > 1 ? rowbytes * height : rowbytes);
    uint32_t box = (flags & LEAKLESS_DECODE_LUMA_BOX) ? reduction_for(width, height, min_side) : 1;
    sink = sink_open(flags, width, height, channels, width, height, 0, box);
    if (!rows || !sink) png_error(png, "out of memory");
    if (passes > 1) {
        pointers = malloc(sizeof(png_bytep) * height);
        if (!pointers) png_error(png, "out of memory");
        for (uint32_t y = 0; y < height; y++) pointers[y] = rows + (size_t)y * rowbytes;
        png_read_image(png, pointers);
        for (uint32_t y = 0; y < height; y++) sink_row(sink, y, rows + (size_t)y * rowbytes, in_channels);
    } else {
        for (uint32_t y = 0; y < height; y++) {
            png_read_row(png, rows, NULL);
            sink_row(sink, y, rows, in_channels);
        }
    }
    png_read_end(png, NULL);
    free(pointers);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->format = LEAKLESS_FORMAT_PNG;
    out->width = width;
    out->height = height;
    sink_finish(sink, out);
    return 0;
}

int leakless_image_decode(const uint8_t *data, size_t size, int scale_denom, uint32_t min_side, uint32_t flags,
                          uint64_t max_pixels,
                          leakless_image *out, char *message, size_t message_size) {
    memset(out, 0, sizeof *out);
    if (message_size) message[0] = 0;
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (size >= 8 && memcmp(data, png_signature, 8) == 0) {
        return decode_png(data, size, min_side, flags, max_pixels, out, message, message_size);
    }
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
        return decode_jpeg(data, size, scale_denom, min_side, flags, max_pixels, out, message, message_size);
    }
    snprintf(message, message_size, "neither a PNG nor a JPEG file");
    return LEAKLESS_DECODE_NOT_AN_IMAGE;
}

void leakless_image_free(leakless_image *image) {
    free(image->pixels);
    free(image->luma);
    image->pixels = NULL;
    image->luma = NULL;
}

int leakless_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, uint32_t channels, int quality,
                         uint8_t **out, size_t *out_size, char *message, size_t message_size) {
    struct jpeg_compress_struct cinfo;
    struct jpeg_failure failure;
    // volatile: these change between setjmp and a possible longjmp.
    unsigned char *volatile buffer = NULL;
    unsigned long size = 0;
    cinfo.err = jpeg_std_error(&failure.base);
    failure.base.error_exit = jpeg_fail;
    failure.message = message;
    failure.message_size = message_size;
    *out = NULL;
    *out_size = 0;
    if (setjmp(failure.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    unsigned char *target = NULL;
    jpeg_mem_dest(&cinfo, &target, &size);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = (int)channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * width * channels);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    buffer = target;
    jpeg_destroy_compress(&cinfo);
    *out = buffer;
    *out_size = size;
    return 0;
}

void leakless_buffer_free(uint8_t *buffer) { free(buffer); }
