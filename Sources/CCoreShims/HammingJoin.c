#include "HammingJoin.h"

#include <stdlib.h>

static int pair_list_push(leakless_pair_list *list, int32_t a, int32_t b, uint8_t distance) {
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 1024;
        int32_t *first = realloc(list->first, capacity * sizeof(int32_t));
        if (first) list->first = first;
        int32_t *second = realloc(list->second, capacity * sizeof(int32_t));
        if (second) list->second = second;
        uint8_t *distance_array = realloc(list->distance, capacity);
        if (distance_array) list->distance = distance_array;
        if (!first || !second || !distance_array) return -1;
        list->capacity = capacity;
    }
    list->first[list->count] = a < b ? a : b;
    list->second[list->count] = a < b ? b : a;
    list->distance[list->count] = distance;
    list->count++;
    return 0;
}

// The body, inlined into one copy per instruction set.
static inline __attribute__((always_inline)) int join_body(const uint64_t *hashes, const int32_t *ids, const int32_t *starts,
                                                          const uint16_t *masks, size_t mask_count, int key_start,
                                                          int key_step, int radius, int chunk, int chunk_radius,
                                                          leakless_pair_list *out) {
    for (int key = key_start; key < 65536; key += key_step) {
        int32_t a_start = starts[key], a_end = starts[key + 1];
        if (a_start == a_end) continue;
        for (size_t m = 0; m < mask_count; m++) {
            int other = key ^ masks[m];
            if (other < key) continue;
            int32_t b_end = starts[other + 1];
            for (int32_t a = a_start; a < a_end; a++) {
                uint64_t ha = hashes[a];
                for (int32_t b = other == key ? a + 1 : starts[other]; b < b_end; b++) {
                    uint64_t x = ha ^ hashes[b];
                    int d = __builtin_popcountll(x);
                    if (d > radius) continue;
                    int earlier = 0;
                    for (int c = 0; c < chunk; c++) {
                        if (__builtin_popcountll((x >> (16 * c)) & 0xFFFF) <= chunk_radius) {
                            earlier = 1;
                            break;
                        }
                    }
                    if (earlier) continue;
                    if (pair_list_push(out, ids[a], ids[b], (uint8_t)d) != 0) return -1;
                }
            }
        }
    }
    return 0;
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("popcnt"))) static int join_popcnt(const uint64_t *hashes, const int32_t *ids, const int32_t *starts,
                                                         const uint16_t *masks, size_t mask_count, int key_start,
                                                         int key_step, int radius, int chunk, int chunk_radius,
                                                         leakless_pair_list *out) {
    return join_body(hashes, ids, starts, masks, mask_count, key_start, key_step, radius, chunk, chunk_radius, out);
}
#endif

static int join_generic(const uint64_t *hashes, const int32_t *ids, const int32_t *starts, const uint16_t *masks,
                        size_t mask_count, int key_start, int key_step, int radius, int chunk, int chunk_radius,
                        leakless_pair_list *out) {
    return join_body(hashes, ids, starts, masks, mask_count, key_start, key_step, radius, chunk, chunk_radius, out);
}

int leakless_hamming_join(const uint64_t *hashes, const int32_t *ids, const int32_t *starts, const uint16_t *masks,
                          size_t mask_count, int key_start, int key_step, int radius, int chunk, int chunk_radius,
                          leakless_pair_list *out) {
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("popcnt")) {
        return join_popcnt(hashes, ids, starts, masks, mask_count, key_start, key_step, radius, chunk, chunk_radius, out);
    }
#endif
    return join_generic(hashes, ids, starts, masks, mask_count, key_start, key_step, radius, chunk, chunk_radius, out);
}

void leakless_pair_list_free(leakless_pair_list *list) {
    free(list->first);
    free(list->second);
    free(list->distance);
    list->first = NULL;
    list->second = NULL;
    list->distance = NULL;
    list->count = 0;
    list->capacity = 0;
}
