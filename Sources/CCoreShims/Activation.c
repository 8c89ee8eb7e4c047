#include "Activation.h"

static inline float leakless_erf(float z) {
    float x = z < -4.0f ? -4.0f : (z > 4.0f ? 4.0f : z);
    float x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return x * p / q;
}

__attribute__((target("avx2,fma"))) static void leakless_gelu_avx2(float *values, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float v = values[i];
        values[i] = 0.5f * v * (1.0f + leakless_erf(v * 0.70710678118654752f));
    }
}

static void leakless_gelu_generic(float *values, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float v = values[i];
        values[i] = 0.5f * v * (1.0f + leakless_erf(v * 0.70710678118654752f));
    }
}

void leakless_gelu(float *values, size_t count) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        leakless_gelu_avx2(values, count);
        return;
    }
#endif
    leakless_gelu_generic(values, count);
}
