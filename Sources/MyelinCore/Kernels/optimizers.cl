// Fused optimizer updates: one work-item per element updates the parameter and its state in place.
// Formulas as in PyTorch's torch.optim (see Sources/Myelin/NN/Optimizers.swift).
//
// Written for implicit vectorization (PoCL packs work-items into SIMD lanes): no memory access sits
// under a branch. Options that change which buffers are used (momentum, centered, amsgrad) are
// separate kernels made by macros; the rest are arithmetic or selects on arguments:
//   decay = 1 - lr * weight_decay when the decay is decoupled, else 1   (θ ← θ·decay)
//   l2    = weight_decay when the decay goes into the gradient, else 0  (g ← g + l2·θ)
//   first != 0: the state buffers are new and uninitialized; their initial value is selected
//               instead of what they hold (the load still happens, its value is discarded).
//
// No bounds check on exact launches: the host launches exactly n work-items (global size n, no work-group size,
// nothing for n = 0; OpenCLBackend+Optimizers.swift), so every work-item has an element. On PoCL a check `i >= n`
// made every load and store of the vectorized work-group loop a masked one (vmaskmovps), which AMD CPUs run
// slowly: Adam fell from 17% to 5% of the Fashion-MNIST MLP's step without it. Where the device rounds launches
// up (GPUs), ROUNDED_GUARD (common.cl) returns past n.


__kernel void sgd_step(__global float* param, __global const float* grad, int n,
                       float lr, float decay, float l2) {
    int i = get_global_id(0);
    ROUNDED_GUARD(i, n);
    float p = param[i];
    float g = grad[i] + l2 * p;
    param[i] = p * decay - lr * g;
}

// b ← g at the first step, else μb + (1 − dampening)g; the step is g + μb (Nesterov) or b.
__kernel void sgd_momentum_step(__global float* param, __global const float* grad, __global float* momentum_buffer,
                                int n, float lr, float decay, float l2, float momentum, float dampening,
                                int nesterov, int first) {
    int i = get_global_id(0);
    ROUNDED_GUARD(i, n);
    float p = param[i];
    float g = grad[i] + l2 * p;
    float old = momentum_buffer[i];
    float b = first ? g : momentum * old + (1.0f - dampening) * g;
    momentum_buffer[i] = b;
    float step = nesterov ? g + momentum * b : b;
    param[i] = p * decay - lr * step;
}

// lr is already decayed on the host: lr / (1 + (t - 1) * lr_decay).
__kernel void adagrad_step(__global float* param, __global const float* grad, __global float* sum, int n,
                           float lr, float l2, float eps, float initial_accumulator, int first) {
    int i = get_global_id(0);
    ROUNDED_GUARD(i, n);
    float p = param[i];
    float g = grad[i] + l2 * p;
    float old = sum[i];
    float s = (first ? initial_accumulator : old) + g * g;
    sum[i] = s;
    param[i] = p - lr * g / (sqrt(s) + eps);
}

// RMSProp: v ← αv + (1 − α)g²; centered: ḡ ← αḡ + (1 − α)g, ṽ = v − ḡ²; momentum: b ← μb + g/(√ṽ + ε).
#define RMSPROP(NAME, CENTERED, MOMENTUM) \
__kernel void NAME(__global float* param, __global const float* grad, __global float* square_avg, \
                   __global float* grad_avg, __global float* momentum_buffer, int n, \
                   float lr, float alpha, float eps, float l2, float momentum, int first) { \
    int i = get_global_id(0); \
    ROUNDED_GUARD(i, n); \
    float p = param[i]; \
    float g = grad[i] + l2 * p; \
    float old_v = square_avg[i]; \
    float v = alpha * (first ? 0.0f : old_v) + (1.0f - alpha) * g * g; \
    square_avg[i] = v; \
    float avg = v; \
    if (CENTERED) { \
        float old_ga = grad_avg[i]; \
        float ga = alpha * (first ? 0.0f : old_ga) + (1.0f - alpha) * g; \
        grad_avg[i] = ga; \
        avg = v - ga * ga; \
    } \
    float denom = sqrt(avg) + eps; \
    if (MOMENTUM) { \
        float old_b = momentum_buffer[i]; \
        float b = momentum * (first ? 0.0f : old_b) + g / denom; \
        momentum_buffer[i] = b; \
        param[i] = p - lr * b; \
    } else { \
        param[i] = p - lr * g / denom; \
    } \
}
RMSPROP(rmsprop_step, 0, 0)
RMSPROP(rmsprop_centered_step, 1, 0)
RMSPROP(rmsprop_momentum_step, 0, 1)
RMSPROP(rmsprop_centered_momentum_step, 1, 1)

// Adam / AdamW: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², θ ← θ·decay − step_size·m / (√v / bc2_sqrt + ε)
// with step_size = lr / (1 − β₁ᵗ) and bc2_sqrt = √(1 − β₂ᵗ) from the host; AMSGrad uses max over steps of v.
#define ADAM(NAME, AMSGRAD) \
__kernel void NAME(__global float* param, __global const float* grad, __global float* exp_avg, \
                   __global float* exp_avg_sq, __global float* max_exp_avg_sq, int n, \
                   float decay, float l2, float beta1, float beta2, float eps, \
                   float step_size, float bc2_sqrt, int first) { \
    int i = get_global_id(0); \
    ROUNDED_GUARD(i, n); \
    float p = param[i]; \
    float g = grad[i] + l2 * p; \
    float old_m = exp_avg[i]; \
    float old_v = exp_avg_sq[i]; \
    float m = beta1 * (first ? 0.0f : old_m) + (1.0f - beta1) * g; \
    float v = beta2 * (first ? 0.0f : old_v) + (1.0f - beta2) * g * g; \
    exp_avg[i] = m; \
    exp_avg_sq[i] = v; \
    if (AMSGRAD) { \
        float old_max = max_exp_avg_sq[i]; \
        v = first ? v : fmax(old_max, v); \
        max_exp_avg_sq[i] = v; \
    } \
    param[i] = p * decay - step_size * m / (sqrt(v) / bc2_sqrt + eps); \
}
ADAM(adam_step, 0)
ADAM(adam_amsgrad_step, 1)
