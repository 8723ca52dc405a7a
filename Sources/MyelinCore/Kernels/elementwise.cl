// Elementwise kernels: fill, unary math, activations and their backward, binary ops (same shape,
// broadcast, and with a scalar). One work-item per element.

__kernel void fill(__global float* out, int offset, int n, float value) {
    int i = get_global_id(0);
    if (i < n) out[offset + i] = value;
}

#define UNARY(NAME, EXPR) \
__kernel void unary_##NAME(__global const float* in, __global float* out, int n) { \
    int i = get_global_id(0); \
    if (i < n) { float x = in[i]; out[i] = (EXPR); } \
}
UNARY(neg, -x)
UNARY(exp, exp(x))
UNARY(log, log(x))
UNARY(sqrt, sqrt(x))
UNARY(abs, fabs(x))
UNARY(square, x * x)
UNARY(reciprocal, 1.0f / x)
UNARY(rsqrt, rsqrt(x))
UNARY(sign, x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f))

__kernel void unary_clamp(__global const float* in, __global float* out, int n, float lo, float hi) {
    int i = get_global_id(0);
    if (i < n) out[i] = fmin(fmax(in[i], lo), hi);
}

#define ACTIVATION(NAME) \
__kernel void act_##NAME(__global const float* in, __global float* out, int n, float p) { \
    int i = get_global_id(0); \
    if (i < n) out[i] = f_##NAME(in[i], p); \
} \
__kernel void actgrad_##NAME(__global const float* x, __global const float* y, __global const float* gy, \
                             __global float* gx, int n, float p) { \
    int i = get_global_id(0); \
    if (i < n) gx[i] = gy[i] * g_##NAME(x[i], y[i], p); \
}
ACTIVATION(identity)
ACTIVATION(step)
ACTIVATION(sigmoid)
ACTIVATION(tanh)
ACTIVATION(relu)
ACTIVATION(leaky_relu)
ACTIVATION(elu)
ACTIVATION(selu)
ACTIVATION(softplus)
ACTIVATION(gelu_tanh)
ACTIVATION(gelu_erf)
ACTIVATION(silu)

// out = a op b (same shape); bcast: up to 4 collapsed dims with per-operand strides (0 = broadcast);
// scalar: x op s, or s op x when first != 0.
#define BINARY(NAME) \
__kernel void binary_##NAME(__global const float* a, __global const float* b, __global float* out, int n) { \
    int i = get_global_id(0); \
    if (i < n) out[i] = b_##NAME(a[i], b[i]); \
} \
__kernel void bcast_##NAME(__global const float* a, __global const float* b, __global float* out, \
                           int d1, int d2, int d3, int n, \
                           int sa0, int sa1, int sa2, int sa3, int sb0, int sb1, int sb2, int sb3) { \
    int i = get_global_id(0); \
    if (i >= n) return; \
    int i3 = i % d3; int r = i / d3; \
    int i2 = r % d2; r /= d2; \
    int i1 = r % d1; int i0 = r / d1; \
    out[i] = b_##NAME(a[i0 * sa0 + i1 * sa1 + i2 * sa2 + i3 * sa3], b[i0 * sb0 + i1 * sb1 + i2 * sb2 + i3 * sb3]); \
} \
__kernel void scalar_##NAME(__global const float* x, __global float* out, int n, float s, int first) { \
    int i = get_global_id(0); \
    if (i < n) out[i] = first ? b_##NAME(s, x[i]) : b_##NAME(x[i], s); \
}
BINARY(add)
BINARY(sub)
BINARY(mul)
BINARY(div)
BINARY(pow)
BINARY(max)
BINARY(min)
BINARY(eq)
BINARY(ne)
BINARY(lt)
BINARY(le)
BINARY(gt)
BINARY(ge)

__kernel void random_uniform_fill(__global float* out, int n, ulong seed) {
    int i = get_global_id(0);
    if (i < n) out[i] = random_uniform(seed, (ulong)i);
}
