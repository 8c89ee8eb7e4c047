#ifndef LEAKLESS_CURL_SHIMS_H
#define LEAKLESS_CURL_SHIMS_H

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
typedef int (*leakless_curl_debug_callback)(CURL *handle, curl_infotype type, char *data, size_t size, void *context);
CURLcode leakless_curl_setopt_debug(CURL *handle, leakless_curl_debug_callback callback);

#endif
