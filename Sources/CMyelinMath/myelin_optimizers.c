// See include/myelin_optimizers.h.
#include "myelin_optimizers.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

/// The largest magnitude bit pattern of p[0..<n] (sign cleared): at least 0x7f800000 exactly when one is NaN or
/// infinite. One loop body, compiled twice (plain x86-64 / other ISAs and AVX2) for the compiler to vectorize.
#define MAGNITUDE_MAX_BODY \
    unsigned acc = 0; \
    for (long i = 0; i < n; i++) { \
        unsigned u; \
        memcpy(&u, p + i, sizeof u); \
        u &= 0x7fffffffu; \
        acc = u > acc ? u : acc; \
    } \
    return acc;

static unsigned magnitude_max(const float *p, long n) { MAGNITUDE_MAX_BODY }
#if defined(__x86_64__)
__attribute__((target("avx2")))
static unsigned magnitude_max_avx2(const float *p, long n) { MAGNITUDE_MAX_BODY }
#endif

int myelin_any_nonfinite(const float *p, long n) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return magnitude_max_avx2(p, n) >= 0x7f800000u;
#endif
    return magnitude_max(p, n) >= 0x7f800000u;
}

// Every multiply and add rounds on its own, as in Swift (no contraction into FMAs).
#pragma clang fp contract(off)

#if !defined(__x86_64__)
// Other architectures: never called (`myelin_sgemm_available()` is 0 there).
void myelin_adam_avx(float *p, const float *g, float *m, float *v, long lo, long hi,
                     float l2, float b1, float c1, float b2, float c2, float decay, float stepSize,
                     float bc2, float eps, int first) {
    abort();
}
#else
__attribute__((target("avx2,fma")))
void myelin_adam_avx(float *p, const float *g, float *m, float *v, long lo, long hi,
                     float l2, float b1, float c1, float b2, float c2, float decay, float stepSize,
                     float bc2, float eps, int first) {
    const __m256 vl2 = _mm256_set1_ps(l2), vb1 = _mm256_set1_ps(b1), vc1 = _mm256_set1_ps(c1),
                 vb2 = _mm256_set1_ps(b2), vc2 = _mm256_set1_ps(c2), vdecay = _mm256_set1_ps(decay),
                 vstep = _mm256_set1_ps(stepSize), vbc2 = _mm256_set1_ps(bc2), veps = _mm256_set1_ps(eps),
                 zero = _mm256_setzero_ps();
    long i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 pi = _mm256_loadu_ps(p + i);
        __m256 gi = _mm256_add_ps(_mm256_loadu_ps(g + i), _mm256_mul_ps(vl2, pi));
        __m256 m0 = first ? zero : _mm256_loadu_ps(m + i), v0 = first ? zero : _mm256_loadu_ps(v + i);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(vb1, m0), _mm256_mul_ps(vc1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(vb2, v0), _mm256_mul_ps(_mm256_mul_ps(vc2, gi), gi));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vbc2), veps);
        __m256 update = _mm256_div_ps(_mm256_mul_ps(vstep, mi), denom);
        _mm256_storeu_ps(p + i, _mm256_sub_ps(_mm256_mul_ps(pi, vdecay), update));
    }
    for (; i < hi; i++) {
        float gi = g[i] + l2 * p[i];
        float mi = b1 * (first ? 0 : m[i]) + c1 * gi, vi = b2 * (first ? 0 : v[i]) + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - stepSize * mi / (sqrtf(vi) / bc2 + eps);
    }
}
#endif
