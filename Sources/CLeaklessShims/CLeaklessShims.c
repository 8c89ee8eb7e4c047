#include <signal.h>
#include <unistd.h>
#include "CLeaklessShims.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

CURLcode leakless_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode leakless_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode leakless_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode leakless_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode leakless_curl_setopt_off(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode leakless_curl_setopt_callback(CURL *handle, CURLoption option, leakless_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

CURLcode leakless_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

struct leakless_jpeg_error {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char *message;
    size_t message_size;
};

static void leakless_jpeg_error_exit(j_common_ptr cinfo) {
    struct leakless_jpeg_error *error = (struct leakless_jpeg_error *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    snprintf(error->message, error->message_size, "%s", buffer);
    longjmp(error->jump, 1);
}

// Warnings (for example a truncated file that libjpeg pads with grey) become errors: a
// damaged image must be rejected, not hashed as if it were whole.
static void leakless_jpeg_emit_message(j_common_ptr cinfo, int level) {
    if (level < 0) {
        leakless_jpeg_error_exit(cinfo);
    }
}

static void leakless_jpeg_setup(struct jpeg_decompress_struct *cinfo, struct leakless_jpeg_error *error,
                                char *message, size_t message_size) {
    cinfo->err = jpeg_std_error(&error->base);
    error->base.error_exit = leakless_jpeg_error_exit;
    error->base.emit_message = leakless_jpeg_emit_message;
    error->message = message;
    error->message_size = message_size;
}

int leakless_jpeg_probe(const uint8_t *data, size_t size, uint32_t *width, uint32_t *height,
                        uint32_t *components, char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    struct leakless_jpeg_error error;
    leakless_jpeg_setup(&cinfo, &error, message, message_size);
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    *width = cinfo.image_width;
    *height = cinfo.image_height;
    *components = (uint32_t)cinfo.num_components;
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int leakless_jpeg_decode(const uint8_t *data, size_t size, int scale_denom, uint64_t max_pixels,
                         leakless_pixels *out, char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    struct leakless_jpeg_error error;
    // volatile: these change between setjmp and a possible longjmp.
    uint8_t *volatile pixels = NULL;
    JSAMPLE *volatile row = NULL;
    memset(out, 0, sizeof(*out));
    leakless_jpeg_setup(&cinfo, &error, message, message_size);
    if (setjmp(error.jump)) {
        free(pixels);
        free(row);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if ((uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height > max_pixels) {
        snprintf(message, message_size, "declared size %ux%u exceeds the limit of %llu pixels",
                 cinfo.image_width, cinfo.image_height, (unsigned long long)max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    if (cmyk) {
        cinfo.out_color_space = JCS_CMYK;
    } else if (cinfo.jpeg_color_space == JCS_GRAYSCALE) {
        cinfo.out_color_space = JCS_GRAYSCALE;
    } else {
        cinfo.out_color_space = JCS_RGB;
    }
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned int)(scale_denom == 2 || scale_denom == 4 || scale_denom == 8 ? scale_denom : 1);
    jpeg_start_decompress(&cinfo);
    uint32_t width = cinfo.output_width, height = cinfo.output_height;
    uint32_t channels = cinfo.out_color_space == JCS_GRAYSCALE ? 1 : 3;
    pixels = malloc((size_t)width * height * channels);
    row = malloc((size_t)width * (size_t)cinfo.output_components);
    if (pixels == NULL || row == NULL) {
        snprintf(message, message_size, "out of memory for a %ux%u image", width, height);
        free(pixels);
        free(row);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < height) {
        JSAMPROW rows[1] = {row};
        uint32_t y = cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, rows, 1);
        uint8_t *target = pixels + (size_t)y * width * channels;
        if (cmyk) {
            // Adobe writes CMYK inverted: R = C*K/255 on the stored (inverted) values.
            for (uint32_t x = 0; x < width; x++) {
                unsigned c = row[4 * x], m = row[4 * x + 1], yy = row[4 * x + 2], k = row[4 * x + 3];
                target[3 * x] = (uint8_t)((c * k + 127) / 255);
                target[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
                target[3 * x + 2] = (uint8_t)((yy * k + 127) / 255);
            }
        } else {
            memcpy(target, row, (size_t)width * channels);
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    out->pixels = pixels;
    out->width = width;
    out->height = height;
    out->channels = channels;
    return 0;
}

void leakless_pixels_free(leakless_pixels *image) {
    free(image->pixels);
    image->pixels = NULL;
}

static volatile sig_atomic_t leakless_interrupt_flag = 0;

static void leakless_on_interrupt(int signal_number) {
    if (leakless_interrupt_flag) {
        _exit(128 + signal_number);
    }
    leakless_interrupt_flag = 1;
    static const char note[] = "\ninterrupted: no new requests; finishing those in flight (again to quit at once)\n";
    ssize_t ignored = write(2, note, sizeof note - 1);
    (void)ignored;
}

void leakless_interrupt_install(void) {
    struct sigaction action;
    action.sa_handler = leakless_on_interrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

int leakless_interrupted(void) { return leakless_interrupt_flag; }

void leakless_interrupt_request(void) { leakless_interrupt_flag = 1; }
