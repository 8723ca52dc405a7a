// See include/myelin_activations.h.
#include "myelin_activations.h"
#include "myelin_gemm.h"
#include <math.h>
#include <string.h>

// The exact GELU, one element at a time (CPUs without AVX2): libm's erfc keeps the lower tail's relative accuracy.
static inline float gelu_scalar(float x) { return x * 0.5f * erfcf(-x * 0.70710678118654752f); }
static inline float gelu_derivative_scalar(float x) {
    return 0.5f * erfcf(-x * 0.70710678118654752f) + x * 0.39894228040143268f * expf(-0.5f * x * x);
}

#if defined(__x86_64__)
typedef float f8 __attribute__((ext_vector_type(8)));
typedef int i8 __attribute__((ext_vector_type(8)));
typedef float f16 __attribute__((ext_vector_type(16)));
typedef int i16 __attribute__((ext_vector_type(16)));

// The GELU kernels for one vector type F of W floats (I: the ints of that width), compiled for TARGET. Every lane
// does the same IEEE operations in the same order at either width, so AVX2 and AVX-512 give the same bits.
//  - exp(x) for x <= 0 (Cephes' expf: x = n·ln 2 + r, a degree-7 polynomial in r, 2^n from the exponent bits); x
//    below −87 gives 0, so that GELU(−40) is 0 as in PyTorch.
//  - Φ(x) = ½ · (1 + erf(x / √2)) = ½ · erfc(−x / √2), with Numerical Recipes' erfcc for erfc(|z|) (a Chebyshev
//    fit, fractional error below 1.2e-7 everywhere): accurate relative to Φ itself in the lower tail, where 1 + erf
//    cancels.
//  - GELU'(x) = Φ(x) + x·φ(x) with Φ(x) read back from the forward's output y = x·Φ(x) (½ at x = 0): one exp, no
//    erfc polynomial (the backward had cost as much as the forward again: 5% of a GPT training step).
//  - The loops take two vectors at a time (the formulas are long dependency chains: two in flight ran 1.2× faster),
//    and the last elements (fewer than W) through a zero-padded vector.
#define MYELIN_GELU_KERNELS(W, F, I, TARGET)                                                                   \
__attribute__((target(TARGET), always_inline)) static inline F expNegative##W(F x) {                           \
    F c = __builtin_elementwise_max(x, (F)-87.f);                                                              \
    F n = __builtin_elementwise_floor(__builtin_elementwise_fma(c, (F)1.44269504088896341f, (F)0.5f));          \
    F r = __builtin_elementwise_fma(n, (F)-0.693359375f, c);                                                   \
    r = __builtin_elementwise_fma(n, (F)2.12194440e-4f, r);                                                    \
    F p = __builtin_elementwise_fma((F)1.9875691500e-4f, r, (F)1.3981999507e-3f);                              \
    p = __builtin_elementwise_fma(p, r, (F)8.3334519073e-3f);                                                  \
    p = __builtin_elementwise_fma(p, r, (F)4.1665795894e-2f);                                                  \
    p = __builtin_elementwise_fma(p, r, (F)1.6666665459e-1f);                                                  \
    p = __builtin_elementwise_fma(p, r, (F)5.0000001201e-1f);                                                  \
    p = __builtin_elementwise_fma(p, r * r, r) + (F)1.f;                                                       \
    I bits = (__builtin_convertvector(n, I) + 127) << 23;                                                      \
    I under = x < (F)-87.f;                                                                                    \
    return (F)(~under & (I)(p * (F)bits));                                                                     \
}                                                                                                              \
__attribute__((target(TARGET), always_inline)) static inline F normalCDF##W(F x) {                             \
    F z = __builtin_elementwise_abs(x) * (F)0.70710678118654752f;                                              \
    F t = (F)1.f / __builtin_elementwise_fma(z, (F)0.5f, (F)1.f);                                              \
    F p = __builtin_elementwise_fma(t, (F)0.17087277f, (F)-0.82215223f);                                       \
    p = __builtin_elementwise_fma(p, t, (F)1.48851587f);                                                       \
    p = __builtin_elementwise_fma(p, t, (F)-1.13520398f);                                                      \
    p = __builtin_elementwise_fma(p, t, (F)0.27886807f);                                                       \
    p = __builtin_elementwise_fma(p, t, (F)-0.18628806f);                                                      \
    p = __builtin_elementwise_fma(p, t, (F)0.09678418f);                                                       \
    p = __builtin_elementwise_fma(p, t, (F)0.37409196f);                                                       \
    p = __builtin_elementwise_fma(p, t, (F)1.00002368f);                                                       \
    p = __builtin_elementwise_fma(p, t, (F)-1.26551223f);                                                      \
    F half = (F)0.5f * t * expNegative##W(__builtin_elementwise_fma(-z, z, p));  /* ½·erfc(|x|/√2) = Φ(−|x|) */ \
    I negative = x < (F)0.f;                                                                                   \
    return (F)((negative & (I)half) | (~negative & (I)((F)1.f - half)));                                       \
}                                                                                                              \
__attribute__((target(TARGET), always_inline)) static inline F gelu##W(F x) { return x * normalCDF##W(x); }    \
__attribute__((target(TARGET), always_inline)) static inline F geluDerivativeFromOutput##W(F x, F y) {         \
    I zero = x == (F)0.f;                                                                                      \
    F cdf = (F)((zero & (I)(F)0.5f) | (~zero & (I)(y / x)));                                                   \
    return __builtin_elementwise_fma(x * (F)0.39894228040143268f, expNegative##W(x * x * (F)-0.5f), cdf);      \
}                                                                                                              \
__attribute__((target(TARGET), always_inline)) static inline F load##W(const float *p, long n) {              \
    F v = (F)0.f;                                                                                              \
    memcpy(&v, p, (size_t)n * sizeof(float));                                                                 \
    return v;                                                                                                  \
}                                                                                                              \
__attribute__((target(TARGET), always_inline)) static inline void store##W(float *p, F v, long n) {           \
    memcpy(p, &v, (size_t)n * sizeof(float));                                                                 \
}                                                                                                              \
__attribute__((target(TARGET))) static void gelu_w##W(const float *x, float *y, long lo, long hi) {           \
    long i = lo;                                                                                               \
    for (; i + 2 * W <= hi; i += 2 * W) {                                                                      \
        F a = gelu##W(load##W(x + i, W)), b = gelu##W(load##W(x + i + W, W));                                  \
        store##W(y + i, a, W);                                                                                 \
        store##W(y + i + W, b, W);                                                                             \
    }                                                                                                          \
    for (; i < hi; i += W) {                                                                                   \
        long n = hi - i < W ? hi - i : W;                                                                      \
        store##W(y + i, gelu##W(load##W(x + i, n)), n);                                                        \
    }                                                                                                          \
}                                                                                                              \
__attribute__((target(TARGET)))                                                                                \
static void gelu_backward_w##W(const float *x, const float *y, const float *gy, float *gx, long lo, long hi) { \
    for (long i = lo; i < hi; i += W) {                                                                        \
        long n = hi - i < W ? hi - i : W;                                                                      \
        F d = geluDerivativeFromOutput##W(load##W(x + i, n), load##W(y + i, n));                                \
        store##W(gx + i, load##W(gy + i, n) * d, n);                                                           \
    }                                                                                                          \
}

MYELIN_GELU_KERNELS(8, f8, i8, "avx2,fma")
MYELIN_GELU_KERNELS(16, f16, i16, "avx512f,avx512dq")

/// Whether the CPU runs AVX-512 (F and DQ), asked once.
static int has_avx512(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    return known;
}
#endif

void myelin_gelu_erf(const float *x, float *y, long lo, long hi) {
#if defined(__x86_64__)
    if (myelin_sgemm_available()) {
        if (has_avx512()) gelu_w16(x, y, lo, hi); else gelu_w8(x, y, lo, hi);
        return;
    }
#endif
    for (long i = lo; i < hi; i++) y[i] = gelu_scalar(x[i]);
}

void myelin_gelu_erf_backward(const float *x, const float *y, const float *gy, float *gx, long lo, long hi) {
#if defined(__x86_64__)
    if (myelin_sgemm_available()) {
        if (has_avx512()) gelu_backward_w16(x, y, gy, gx, lo, hi); else gelu_backward_w8(x, y, gy, gx, lo, hi);
        return;
    }
#endif
    for (long i = lo; i < hi; i++) gx[i] = gy[i] * gelu_derivative_scalar(x[i]);
}

// exp(x) for x ≤ 0 (Cephes' expf): x = k·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6 polynomial, 2^k by the exponent
// bits; x below −87.3 gives 0.
#define MYELIN_EXP_BODY(T, I, x)                                                                          \
    T k = __builtin_elementwise_floor(x * 1.44269504088896341f + 0.5f);                                   \
    T r = x - k * 0.693359375f;                                                                           \
    r = r - k * -2.12194440e-4f;                                                                          \
    T e = r * 1.9875691500e-4f + 1.3981999507e-3f;                                                        \
    e = e * r + 8.3334519073e-3f;                                                                         \
    e = e * r + 4.1665795894e-2f;                                                                         \
    e = e * r + 1.6666665459e-1f;                                                                         \
    e = e * r + 5.0000001201e-1f;                                                                         \
    e = e * r * r + r + 1.0f;                                                                             \
    I bits = (__builtin_convertvector(k, I) + 127) << 23;                                                 \
    T scale;                                                                                              \
    __builtin_memcpy(&scale, &bits, sizeof scale);                                                        \
    T result = e * scale;

typedef float exp_float1 __attribute__((ext_vector_type(1)));
typedef int exp_int1 __attribute__((ext_vector_type(1)));

static inline float exp_one(float x) {
    if (x != x) return x;   // NaN stays NaN
    if (x < -87.33654f) return 0.0f;
    exp_float1 v = x;
    MYELIN_EXP_BODY(exp_float1, exp_int1, v)
    return result[0];
}

#if defined(__x86_64__)
typedef float float8_t __attribute__((ext_vector_type(8)));
typedef int exp_int8 __attribute__((ext_vector_type(8)));

__attribute__((target("avx2,fma")))
static float exp_shifted_avx2(float *row, long n, float shift) {
    float8_t acc = 0.0f;
    long c = 0;
    for (; c + 8 <= n; c += 8) {
        float8_t x;
        __builtin_memcpy(&x, row + c, sizeof x);
        x = x - shift;
        float8_t clamped = __builtin_elementwise_max(x, (float8_t)-87.33654f);
        MYELIN_EXP_BODY(float8_t, exp_int8, clamped)
        result = x < -87.33654f ? (float8_t)0.0f : result;   // −∞ (a masked key) gives 0
        result = x == x ? result : x;                            // NaN stays NaN
        __builtin_memcpy(row + c, &result, sizeof result);
        acc += result;
    }
    float sum = 0.0f;
    for (int lane = 0; lane < 8; lane++) sum += acc[lane];
    for (; c < n; c++) {
        row[c] = exp_one(row[c] - shift);
        sum += row[c];
    }
    return sum;
}
#endif

float myelin_exp_shifted(float *row, long n, float shift) {
#if defined(__x86_64__)
    if (myelin_sgemm_available()) return exp_shifted_avx2(row, n, shift);
#endif
    float sum = 0.0f;
    for (long c = 0; c < n; c++) {
        row[c] = exp_one(row[c] - shift);
        sum += row[c];
    }
    return sum;
}
