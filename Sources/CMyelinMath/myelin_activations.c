// See include/myelin_activations.h.
#include "myelin_activations.h"
#include "myelin_gemm.h"

// erf(z) on z clamped to [-4, 4]: z·P(z²)/Q(z²) (the rational form of Eigen's and XLA's float erf).
#define MYELIN_ERF_BODY(T, z0)                                                                            \
    T z = z0 < -4.0f ? -4.0f : (z0 > 4.0f ? 4.0f : z0);                                                   \
    T z2 = z * z;                                                                                         \
    T p = z2 * -2.72614225801306e-10f + 2.77068142495902e-08f;                                            \
    p = z2 * p + -2.10102402082508e-06f;                                                                  \
    p = z2 * p + -5.69250639462346e-05f;                                                                  \
    p = z2 * p + -7.34990630326855e-04f;                                                                  \
    p = z2 * p + -2.95459980854025e-03f;                                                                  \
    p = z2 * p + -1.60960333262415e-02f;                                                                  \
    T q = z2 * -1.45660718464996e-05f + -2.13374055278905e-04f;                                           \
    q = z2 * q + -1.68282697438203e-03f;                                                                  \
    q = z2 * q + -7.37332916720468e-03f;                                                                  \
    q = z2 * q + -1.42647390514189e-02f;                                                                  \
    T erf = z * p / q;

static inline float gelu_one(float x) {
    float z0 = x * 0.70710678118654752f;
    MYELIN_ERF_BODY(float, z0)
    return 0.5f * x * (1.0f + erf);
}

#if defined(__x86_64__)
typedef float gelu_float8 __attribute__((ext_vector_type(8)));

__attribute__((target("avx2,fma")))
static void gelu_avx2(const float *x, float *y, long lo, long hi) {
    long i = lo;
    for (; i + 8 <= hi; i += 8) {
        gelu_float8 v;
        __builtin_memcpy(&v, x + i, sizeof v);
        gelu_float8 z0 = v * 0.70710678118654752f;
        gelu_float8 z = __builtin_elementwise_min(__builtin_elementwise_max(z0, (gelu_float8)-4.0f), (gelu_float8)4.0f);
        gelu_float8 z2 = z * z;
        gelu_float8 p = z2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
        p = z2 * p + -2.10102402082508e-06f;
        p = z2 * p + -5.69250639462346e-05f;
        p = z2 * p + -7.34990630326855e-04f;
        p = z2 * p + -2.95459980854025e-03f;
        p = z2 * p + -1.60960333262415e-02f;
        gelu_float8 q = z2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
        q = z2 * q + -1.68282697438203e-03f;
        q = z2 * q + -7.37332916720468e-03f;
        q = z2 * q + -1.42647390514189e-02f;
        gelu_float8 out = 0.5f * v * (1.0f + z * p / q);
        __builtin_memcpy(y + i, &out, sizeof out);
    }
    for (; i < hi; i++) y[i] = gelu_one(x[i]);
}
#endif

void myelin_gelu_erf(const float *x, float *y, long lo, long hi) {
#if defined(__x86_64__)
    if (myelin_sgemm_available()) {
        gelu_avx2(x, y, lo, hi);
        return;
    }
#endif
    for (long i = lo; i < hi; i++) y[i] = gelu_one(x[i]);
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
typedef int exp_int8 __attribute__((ext_vector_type(8)));

__attribute__((target("avx2,fma")))
static float exp_shifted_avx2(float *row, long n, float shift) {
    gelu_float8 acc = 0.0f;
    long c = 0;
    for (; c + 8 <= n; c += 8) {
        gelu_float8 x;
        __builtin_memcpy(&x, row + c, sizeof x);
        x = x - shift;
        gelu_float8 clamped = __builtin_elementwise_max(x, (gelu_float8)-87.33654f);
        MYELIN_EXP_BODY(gelu_float8, exp_int8, clamped)
        result = x < -87.33654f ? (gelu_float8)0.0f : result;   // −∞ (a masked key) gives 0
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
