// Shared helpers for every Myelin kernel: activation functions and their derivatives, the GEMM epilogue, binary
// ops, and the counter-based random generator. Included first in the program (see KernelLibrary.join).

// Activation codes: the same numbers as `Activation.code` (Sources/MyelinCore/Tensor/Activation.swift, which holds
// the Swift side of every activation: names, codes, CPU formulas); f_* below are the forward formulas, g_* the
// derivatives, each with an `ACTIVATION(name)` line in elementwise.cl.
#define ACT_IDENTITY 0
#define ACT_STEP 1
#define ACT_SIGMOID 2
#define ACT_TANH 3
#define ACT_RELU 4
#define ACT_LEAKY_RELU 5
#define ACT_ELU 6
#define ACT_SELU 7
#define ACT_SOFTPLUS 8
#define ACT_GELU_TANH 9
#define ACT_GELU_ERF 10
#define ACT_SILU 11

#define SELU_LAMBDA 1.0507009873554805f
#define SELU_ALPHA 1.6732632423543772f
#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_C 0.044715f
#define INV_SQRT_2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f

inline float f_identity(float x, float p) { return x; }
inline float f_step(float x, float p) { return x > 0.0f ? 1.0f : 0.0f; }
inline float f_sigmoid(float x, float p) { return 1.0f / (1.0f + exp(-x)); }
inline float f_tanh(float x, float p) { return tanh(x); }
inline float f_relu(float x, float p) { return fmax(x, 0.0f); }
inline float f_leaky_relu(float x, float p) { return x > 0.0f ? x : p * x; }
inline float f_elu(float x, float p) { return x > 0.0f ? x : p * (exp(x) - 1.0f); }
inline float f_selu(float x, float p) { return SELU_LAMBDA * (x > 0.0f ? x : SELU_ALPHA * (exp(x) - 1.0f)); }
inline float f_softplus(float x, float p) { return fmax(x, 0.0f) + log1p(exp(-fabs(x))); }
// GELU, tanh form: 0.5·x·(1 + tanh u) with u = sqrt(2/pi)·(x + 0.044715·x³), written as x·sigmoid(2u) through
// e = exp(-2|u|) <= 1, so that neither 1 + tanh u nor 1 - tanh² u cancels when |x| is large.
inline float f_gelu_tanh(float x, float p) {
    float u = SQRT_2_OVER_PI * (x + GELU_C * x * x * x);
    float e = exp(-2.0f * fabs(u));
    return x * ((u >= 0.0f ? 1.0f : e) / (1.0f + e));
}
// Φ(x) = ½·(1 + erf(x/√2)) = ½·erfc(−x/√2), with Numerical Recipes' erfcc for erfc(|z|) (fractional error below
// 1.2e-7): the lower tail keeps its relative accuracy, and PoCL runs it as vectors, where its erf was a scalar
// call per element (a third of a GPT step); the CPU device's vector path (myelin_activations.c) is the same formula.
inline float normal_cdf(float x) {
    float z = fabs(x) * INV_SQRT_2;
    float t = 1.0f / (1.0f + 0.5f * z);
    float q = t * 0.17087277f - 0.82215223f;
    q = q * t + 1.48851587f; q = q * t - 1.13520398f; q = q * t + 0.27886807f; q = q * t - 0.18628806f;
    q = q * t + 0.09678418f; q = q * t + 0.37409196f; q = q * t + 1.00002368f; q = q * t - 1.26551223f;
    float lower = 0.5f * t * exp(q - z * z);
    return x < 0.0f ? lower : 1.0f - lower;
}
inline float f_gelu_erf(float x, float p) { return x * normal_cdf(x); }
inline float f_silu(float x, float p) { return x / (1.0f + exp(-x)); }

// Derivatives f'(x), given x and y = f(x).
inline float g_identity(float x, float y, float p) { return 1.0f; }
inline float g_step(float x, float y, float p) { return 0.0f; }
inline float g_sigmoid(float x, float y, float p) { return y * (1.0f - y); }
inline float g_tanh(float x, float y, float p) { return 1.0f - y * y; }
inline float g_relu(float x, float y, float p) { return x > 0.0f ? 1.0f : 0.0f; }
inline float g_leaky_relu(float x, float y, float p) { return x > 0.0f ? 1.0f : p; }
inline float g_elu(float x, float y, float p) { return x > 0.0f ? 1.0f : y + p; }
inline float g_selu(float x, float y, float p) { return x > 0.0f ? SELU_LAMBDA : SELU_LAMBDA * SELU_ALPHA * exp(x); }
inline float g_softplus(float x, float y, float p) { return 1.0f / (1.0f + exp(-x)); }
// d/dx x·s(2u) = s + 2x·s(1 - s)·u' with s(1 - s) = e / (1 + e)²; far out (e = 0) it is just s.
inline float g_gelu_tanh(float x, float y, float p) {
    float u = SQRT_2_OVER_PI * (x + GELU_C * x * x * x);
    float e = exp(-2.0f * fabs(u));
    float r = 1.0f / (1.0f + e);
    float s = u >= 0.0f ? r : e * r;
    return e == 0.0f ? s : s + 2.0f * x * e * r * r * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_C * x * x);
}
inline float g_gelu_erf(float x, float y, float p) {
    return normal_cdf(x) + x * exp(-0.5f * x * x) * INV_SQRT_2PI;
}
inline float g_silu(float x, float y, float p) {
    float s = 1.0f / (1.0f + exp(-x));
    return s * (1.0f + x * (1.0f - s));
}

inline float act_apply(int code, float x, float p) {
    switch (code) {
    case ACT_STEP: return f_step(x, p);
    case ACT_SIGMOID: return f_sigmoid(x, p);
    case ACT_TANH: return f_tanh(x, p);
    case ACT_RELU: return f_relu(x, p);
    case ACT_LEAKY_RELU: return f_leaky_relu(x, p);
    case ACT_ELU: return f_elu(x, p);
    case ACT_SELU: return f_selu(x, p);
    case ACT_SOFTPLUS: return f_softplus(x, p);
    case ACT_GELU_TANH: return f_gelu_tanh(x, p);
    case ACT_GELU_ERF: return f_gelu_erf(x, p);
    case ACT_SILU: return f_silu(x, p);
    default: return x;
    }
}

// ROUNDED_GUARD(i, n): on devices whose launches without a work-group size are rounded up to a whole number of
// work-groups (GPUs: OpenCLBackend.roundsLaunches; the program then starts with #define MYELIN_ROUNDED_LAUNCHES),
// the work-items past the end return. Elsewhere (PoCL) the launch is exact and the check is left out, so that no
// load or store of the vectorized work-group loop is masked.
#ifdef MYELIN_ROUNDED_LAUNCHES
#define ROUNDED_GUARD(i, n) if ((i) >= (n)) return
#else
#define ROUNDED_GUARD(i, n)
#endif

// The end of every GEMM kernel for one output C[i, j] (Kernels/gemm.cl, gemm_tuned.cl): alpha times the sum, plus
// beta times C's old value (not read when beta is 0), plus bias[j] when there is one, through the activation.
inline float gemm_epilogue(float acc, float alpha, float beta, __global const float* c_old,
                           __global const float* bias, int has_bias, int j, int act, float act_p) {
    float v = alpha * acc;
    if (beta != 0.0f) v += beta * (*c_old);
    if (has_bias) v += bias[j];
    return act_apply(act, v, act_p);
}

// Binary ops; comparisons give 1 or 0.
inline float b_add(float a, float b) { return a + b; }
inline float b_sub(float a, float b) { return a - b; }
inline float b_mul(float a, float b) { return a * b; }
inline float b_div(float a, float b) { return a / b; }
inline float b_pow(float a, float b) { return pow(a, b); }
inline float b_max(float a, float b) { return fmax(a, b); }
inline float b_min(float a, float b) { return fmin(a, b); }
inline float b_eq(float a, float b) { return a == b ? 1.0f : 0.0f; }
inline float b_ne(float a, float b) { return a != b ? 1.0f : 0.0f; }
inline float b_lt(float a, float b) { return a < b ? 1.0f : 0.0f; }
inline float b_le(float a, float b) { return a <= b ? 1.0f : 0.0f; }
inline float b_gt(float a, float b) { return a > b ? 1.0f : 0.0f; }
inline float b_ge(float a, float b) { return a >= b ? 1.0f : 0.0f; }

// Counter-based random numbers: uniform in [0, 1) from (seed, index), the same bits as the CPU's
// `CounterRandom.uniform` (splitmix64 finalizer, top 24 bits).
inline float random_uniform(ulong seed, ulong index) {
    ulong z = seed + (index + 1UL) * 0x9E3779B97F4A7C15UL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    z = z ^ (z >> 31);
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}
