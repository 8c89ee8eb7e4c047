#ifndef LEAKLESS_SHIMS_H
#define LEAKLESS_SHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic: Swift needs one typed entry per argument type.
CURLcode leakless_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode leakless_curl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode leakless_curl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode leakless_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode leakless_curl_setopt_off(CURL *handle, CURLoption option, curl_off_t value);
typedef size_t (*leakless_curl_data_callback)(char *data, size_t size, size_t count, void *context);
CURLcode leakless_curl_setopt_callback(CURL *handle, CURLoption option, leakless_curl_data_callback callback);
CURLcode leakless_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);

// A decoded image: 8-bit samples, `channels` per pixel (1 grey, 3 RGB), rows packed.
typedef struct {
    uint8_t *pixels;
    uint32_t width;
    uint32_t height;
    uint32_t channels;
} leakless_pixels;

// Reads a JPEG's header only: its size and component count. Returns 0, or -1 with `message` set.
int leakless_jpeg_probe(const uint8_t *data, size_t size, uint32_t *width, uint32_t *height,
                        uint32_t *components, char *message, size_t message_size);

// Decodes a JPEG held in memory. `scale_denom` (1, 2, 4 or 8) asks libjpeg-turbo for a DCT-scaled
// decode. Images whose declared size exceeds `max_pixels` are refused before any pixel buffer is
// allocated. CMYK and YCCK are converted to RGB (Adobe's inverted CMYK, as Photoshop writes it).
// Returns 0, or -1 with `message` set; libjpeg's errors arrive by longjmp, caught here.
int leakless_jpeg_decode(const uint8_t *data, size_t size, int scale_denom, uint64_t max_pixels,
                         leakless_pixels *out, char *message, size_t message_size);

void leakless_pixels_free(leakless_pixels *image);

// Ctrl-C: the first SIGINT (or SIGTERM) sets a flag the stages poll, so they stop sending new
// requests and write what finished; a second one ends the process at once.
void leakless_interrupt_install(void);
int leakless_interrupted(void);
void leakless_interrupt_request(void);

#endif
