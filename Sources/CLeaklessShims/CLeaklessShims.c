#include <signal.h>
#include <unistd.h>
#include "CLeaklessShims.h"


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
