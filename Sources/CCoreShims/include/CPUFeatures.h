#ifndef LEAKLESS_CPU_FEATURES_H
#define LEAKLESS_CPU_FEATURES_H

// What the processor can run: 2 for AVX-512 (F, BW, DQ, VL), 1 for AVX2 with FMA, 0 otherwise.
int leakless_cpu_vector_level(void);

#endif
