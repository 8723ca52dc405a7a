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
#define AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

AVX2 f8 splat(float v) { return (f8){v, v, v, v, v, v, v, v}; }
AVX2 f8 fma8(f8 a, f8 b, f8 c) { return __builtin_elementwise_fma(a, b, c); }

/// exp(x) for x <= 0 (Cephes' expf: x = n·ln 2 + r, a degree-7 polynomial in r, 2^n from the exponent bits);
/// x below −87 gives 0.
AVX2 f8 expNegative8(f8 x) {
    f8 c = __builtin_elementwise_max(x, splat(-87.f));
    f8 n = __builtin_elementwise_floor(fma8(c, splat(1.44269504088896341f), splat(0.5f)));
    f8 r = fma8(n, splat(-0.693359375f), c);
    r = fma8(n, splat(2.12194440e-4f), r);
    f8 p = fma8(splat(1.9875691500e-4f), r, splat(1.3981999507e-3f));
    p = fma8(p, r, splat(8.3334519073e-3f));
    p = fma8(p, r, splat(4.1665795894e-2f));
    p = fma8(p, r, splat(1.6666665459e-1f));
    p = fma8(p, r, splat(5.0000001201e-1f));
    p = fma8(p, r * r, r) + splat(1.f);
    i8 bits = (__builtin_convertvector(n, i8) + 127) << 23;
    i8 under = x < splat(-87.f);   // exp below 1.6e-38 is 0, so that GELU(−40) is 0 as in PyTorch
    return (f8)(~under & (i8)(p * (f8)bits));
}

/// Φ(x) = ½ · (1 + erf(x / √2)) = ½ · erfc(−x / √2), with Numerical Recipes' erfcc for erfc(|z|) (a Chebyshev
/// fit, fractional error below 1.2e-7 everywhere): accurate relative to Φ itself in the lower tail, where 1 + erf
/// cancels.
AVX2 f8 normalCDF8(f8 x) {
    f8 z = __builtin_elementwise_abs(x) * splat(0.70710678118654752f);
    f8 t = splat(1.f) / fma8(z, splat(0.5f), splat(1.f));
    f8 p = fma8(t, splat(0.17087277f), splat(-0.82215223f));
    p = fma8(p, t, splat(1.48851587f));
    p = fma8(p, t, splat(-1.13520398f));
    p = fma8(p, t, splat(0.27886807f));
    p = fma8(p, t, splat(-0.18628806f));
    p = fma8(p, t, splat(0.09678418f));
    p = fma8(p, t, splat(0.37409196f));
    p = fma8(p, t, splat(1.00002368f));
    p = fma8(p, t, splat(-1.26551223f));
    f8 half = splat(0.5f) * t * expNegative8(fma8(-z, z, p));  // ½ · erfc(|x| / √2) = Φ(−|x|)
    i8 negative = x < splat(0.f);
    return (f8)((negative & (i8)half) | (~negative & (i8)(splat(1.f) - half)));
}

AVX2 f8 gelu8(f8 x) { return x * normalCDF8(x); }

AVX2 f8 load8(const float *p) { f8 v; memcpy(&v, p, sizeof v); return v; }
AVX2 void store8(float *p, f8 v) { memcpy(p, &v, sizeof v); }

/// Lanes [i, hi) (fewer than 8) through a zero-padded vector: the same arithmetic as the whole vectors.
AVX2 f8 loadTail(const float *p, long n) { f8 v = splat(0.f); memcpy(&v, p, (size_t)n * sizeof(float)); return v; }
AVX2 void storeTail(float *p, f8 v, long n) { memcpy(p, &v, (size_t)n * sizeof(float)); }

__attribute__((target("avx2,fma")))
static void gelu_avx2(const float *x, float *y, long lo, long hi) {
    long i = lo;
    for (; i + 8 <= hi; i += 8) store8(y + i, gelu8(load8(x + i)));
    if (i < hi) storeTail(y + i, gelu8(loadTail(x + i, hi - i)), hi - i);
}

/// GELU'(x) = Φ(x) + x·φ(x) with Φ(x) read back from the forward's output y = x·Φ(x) (½ at x = 0): one exp, no
/// erfc polynomial (the backward had cost as much as the forward again: 5% of a GPT training step).
AVX2 f8 geluDerivativeFromOutput8(f8 x, f8 y) {
    i8 zero = x == splat(0.f);
    f8 cdf = (f8)((zero & (i8)splat(0.5f)) | (~zero & (i8)(y / x)));
    return fma8(x * splat(0.39894228040143268f), expNegative8(x * x * splat(-0.5f)), cdf);
}

__attribute__((target("avx2,fma")))
static void gelu_backward_avx2(const float *x, const float *y, const float *gy, float *gx, long lo, long hi) {
    long i = lo;
    for (; i + 8 <= hi; i += 8) store8(gx + i, load8(gy + i) * geluDerivativeFromOutput8(load8(x + i), load8(y + i)));
    if (i < hi) {
        long n = hi - i;
        storeTail(gx + i, loadTail(gy + i, n) * geluDerivativeFromOutput8(loadTail(x + i, n), loadTail(y + i, n)), n);
    }
}
#endif

void myelin_gelu_erf(const float *x, float *y, long lo, long hi) {
#if defined(__x86_64__)
    if (myelin_sgemm_available()) { gelu_avx2(x, y, lo, hi); return; }
#endif
    for (long i = lo; i < hi; i++) y[i] = gelu_scalar(x[i]);
}

void myelin_gelu_erf_backward(const float *x, const float *y, const float *gy, float *gx, long lo, long hi) {
#if defined(__x86_64__)
    if (myelin_sgemm_available()) { gelu_backward_avx2(x, y, gy, gx, lo, hi); return; }
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
