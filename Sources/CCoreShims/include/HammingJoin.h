#ifndef LEAKLESS_HAMMING_JOIN_H
#define LEAKLESS_HAMMING_JOIN_H

#include <stddef.h>
#include <stdint.h>

// Pairs found by leakless_hamming_join, in three parallel arrays the caller frees with
// leakless_pair_list_free.
typedef struct {
    int32_t *first;
    int32_t *second;
    uint8_t *distance;
    size_t count;
    size_t capacity;
} leakless_pair_list;

// The inner loop of the multi-index search, in C so that it can use the CPU's popcount
// instruction where there is one (chosen at run time; Swift compiles for the baseline CPU).
// `hashes` and `ids` are sorted by the 16-bit chunk `chunk`; bucket k is [starts[k], starts[k+1]).
// For each key key_start, key_start + key_step, ... below 65536 it joins the bucket with itself and
// with every bucket key ^ mask >= key, keeping pairs within `radius` bits that no earlier chunk
// has within `chunk_radius` bits (that chunk reports them). Returns 0, or -1 when memory runs out.
int leakless_hamming_join(const uint64_t *hashes, const int32_t *ids, const int32_t *starts, const uint16_t *masks,
                          size_t mask_count, int key_start, int key_step, int radius, int chunk, int chunk_radius,
                          leakless_pair_list *out);

void leakless_pair_list_free(leakless_pair_list *list);

#endif
