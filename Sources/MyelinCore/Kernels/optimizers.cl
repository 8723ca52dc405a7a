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
// The update of element i (AMSGRAD: with the maximum of v), shared by adam_step and adam_multi_step.
#define ADAM_UPDATE(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, i, AMSGRAD) { \
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
#define ADAM(NAME, AMSGRAD) \
__kernel void NAME(__global float* param, __global const float* grad, __global float* exp_avg, \
                   __global float* exp_avg_sq, __global float* max_exp_avg_sq, int n, \
                   float decay, float l2, float beta1, float beta2, float eps, \
                   float step_size, float bc2_sqrt, int first) { \
    int i = get_global_id(0); \
    ROUNDED_GUARD(i, n); \
    ADAM_UPDATE(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, i, AMSGRAD) \
}
ADAM(adam_step, 0)
ADAM(adam_amsgrad_step, 1)

// Adam / AdamW on up to 8 tensors in one launch (PyTorch's foreach Adam; OpenCL 1.2 has no table of pointers), the
// same update as adam_step element by element, with the same hyperparameters for every tensor: tensor k is p_k
// with gradient g_k, moments m_k and v_k (x_k, the AMSGrad maximum, or null) and n_k elements; an unused slot has
// n_k = 0 and null buffers, never read. Work-item i updates elements i, i + G, i + 2G, ... of every tensor (G, the
// global size, any size, rounded or not): first n_k / G whole rounds, a loop whose trip count is the same for every
// work-item (PoCL still runs the work-items of each round as vector lanes, unmasked), then at most one element of
// the remainder.
#define ADAM_TENSOR_ARGS(k) __global float* p##k, __global const float* g##k, __global float* m##k, \
                            __global float* v##k, __global float* x##k, int n##k
#define ADAM_TENSOR(k, AMSGRAD) { \
    int whole = n##k / stride; \
    for (int t = 0; t < whole; ++t) { \
        int j = t * stride + i; \
        ADAM_UPDATE(p##k, g##k, m##k, v##k, x##k, j, AMSGRAD) \
    } \
    int j = whole * stride + i; \
    if (j < n##k) ADAM_UPDATE(p##k, g##k, m##k, v##k, x##k, j, AMSGRAD) \
}
#define ADAM_MULTI(NAME, AMSGRAD) \
__kernel void NAME(ADAM_TENSOR_ARGS(0), ADAM_TENSOR_ARGS(1), ADAM_TENSOR_ARGS(2), ADAM_TENSOR_ARGS(3), \
                   ADAM_TENSOR_ARGS(4), ADAM_TENSOR_ARGS(5), ADAM_TENSOR_ARGS(6), ADAM_TENSOR_ARGS(7), \
                   float decay, float l2, float beta1, float beta2, float eps, \
                   float step_size, float bc2_sqrt, int first) { \
    int i = get_global_id(0), stride = get_global_size(0); \
    ADAM_TENSOR(0, AMSGRAD) ADAM_TENSOR(1, AMSGRAD) ADAM_TENSOR(2, AMSGRAD) ADAM_TENSOR(3, AMSGRAD) \
    ADAM_TENSOR(4, AMSGRAD) ADAM_TENSOR(5, AMSGRAD) ADAM_TENSOR(6, AMSGRAD) ADAM_TENSOR(7, AMSGRAD) \
}
ADAM_MULTI(adam_multi_step, 0)
ADAM_MULTI(adam_amsgrad_multi_step, 1)

// fit's per-batch bookkeeping (Sources/Myelin/Training/Fit.swift; OpenCLBackend+Bookkeeping.swift).

// Sets flag[0] to 1.0f when one of the (up to 8) tensors a_k of n_k elements holds a NaN or an infinity, and
// leaves it alone otherwise. Every work-item walks every tensor with a stride of the global size (any global size
// works, rounded or not; an unused slot has n_k = 0 and a null buffer, never read); one that finds a non-finite
// value ORs 1.0f's bits into the flag atomically (every writer writes the same bits, so the result is 1.0f).
#define NONFINITE_SCAN(A, N) for (int j = i; j < (N); j += stride) bad |= !isfinite((A)[j]);
__kernel void nonfinite_flag8(__global const float* a0, int n0, __global const float* a1, int n1,
                              __global const float* a2, int n2, __global const float* a3, int n3,
                              __global const float* a4, int n4, __global const float* a5, int n5,
                              __global const float* a6, int n6, __global const float* a7, int n7,
                              __global int* flag) {
    int i = get_global_id(0), stride = get_global_size(0);
    int bad = 0;
    NONFINITE_SCAN(a0, n0) NONFINITE_SCAN(a1, n1) NONFINITE_SCAN(a2, n2) NONFINITE_SCAN(a3, n3)
    NONFINITE_SCAN(a4, n4) NONFINITE_SCAN(a5, n5) NONFINITE_SCAN(a6, n6) NONFINITE_SCAN(a7, n7)
    if (bad) atomic_or(flag, 0x3f800000);
}

// One work-item: loss_sum += loss · count; first_bad = min(first_bad, code) with code = `none` when the loss and
// the parameters are finite (params_bad == 0), 2b + 1 (batch2 + 1) when only the parameters are not, 2b when the
// loss is not; then params_bad = 0 for the next batch. The product is kept apart from the sum (volatile), so
// -cl-mad-enable cannot fuse them: the same value as the two ops (scalar multiply, add) it replaces.
__kernel void fit_note(__global float* first_bad, __global float* params_bad, __global const float* loss,
                       __global float* loss_sum, float count, float batch2, float none) {
    float l = loss[0];
    volatile float weighted = l * count;
    loss_sum[0] = loss_sum[0] + weighted;
    int loss_good = isfinite(l);
    int all_good = loss_good && params_bad[0] == 0.0f;
    float code = all_good ? none : (loss_good ? batch2 + 1.0f : batch2);
    first_bad[0] = fmin(first_bad[0], code);
    params_bad[0] = 0.0f;
}

// One work-group: sum[0] += the number of rows of x [rows, cols] whose largest value (the first one, as
// argmax_rows picks) is at the column the row's label names. The count is a whole number, exact in float.
__kernel void accuracy_add(__global const float* x, __global const float* labels, int rows, int cols,
                           __global float* sum, __local int* hits) {
    int l = get_local_id(0), size = get_local_size(0);
    int mine = 0;
    for (int r = l; r < rows; r += size) {
        __global const float* p = x + (long)r * cols;
        float best = p[0];
        int at = 0;
        for (int c = 1; c < cols; ++c) if (p[c] > best) { best = p[c]; at = c; }
        mine += (float)at == labels[r];
    }
    hits[l] = mine;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (l == 0) {
        int total = 0;
        for (int k = 0; k < size; ++k) total += hits[k];
        sum[0] = sum[0] + (float)total;
    }
}
