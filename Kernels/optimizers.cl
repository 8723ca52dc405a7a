// Fused optimizer updates: one work-item per element updates the parameter and its state in place.
// Formulas as in PyTorch's torch.optim (see Sources/Myelin/NN/Optimizers.swift). `first` != 0 means
// the state buffers are new and uninitialized: their initial value is used instead of reading them.
// Unused state buffers are null and never touched.

__kernel void sgd_step(__global float* param, __global const float* grad, __global float* momentum_buffer, int n,
                       float lr, float momentum, float dampening, float weight_decay,
                       int nesterov, int decoupled, int first) {
    int i = get_global_id(0);
    if (i >= n) return;
    float p = param[i];
    float g = grad[i];
    if (weight_decay != 0.0f) {
        if (decoupled) p *= 1.0f - lr * weight_decay;
        else g += weight_decay * p;
    }
    if (momentum != 0.0f) {
        float b = first ? g : momentum * momentum_buffer[i] + (1.0f - dampening) * g;
        momentum_buffer[i] = b;
        g = nesterov ? g + momentum * b : b;
    }
    param[i] = p - lr * g;
}

// lr is already decayed on the host: lr / (1 + (t - 1) * lr_decay).
__kernel void adagrad_step(__global float* param, __global const float* grad, __global float* sum, int n,
                           float lr, float weight_decay, float eps, float initial_accumulator, int first) {
    int i = get_global_id(0);
    if (i >= n) return;
    float p = param[i];
    float g = grad[i];
    if (weight_decay != 0.0f) g += weight_decay * p;
    float s = (first ? initial_accumulator : sum[i]) + g * g;
    sum[i] = s;
    param[i] = p - lr * g / (sqrt(s) + eps);
}

__kernel void rmsprop_step(__global float* param, __global const float* grad, __global float* square_avg,
                           __global float* grad_avg, __global float* momentum_buffer, int n,
                           float lr, float alpha, float eps, float weight_decay, float momentum,
                           int centered, int first) {
    int i = get_global_id(0);
    if (i >= n) return;
    float p = param[i];
    float g = grad[i];
    if (weight_decay != 0.0f) g += weight_decay * p;
    float v = alpha * (first ? 0.0f : square_avg[i]) + (1.0f - alpha) * g * g;
    square_avg[i] = v;
    float avg = v;
    if (centered) {
        float ga = alpha * (first ? 0.0f : grad_avg[i]) + (1.0f - alpha) * g;
        grad_avg[i] = ga;
        avg = v - ga * ga;
    }
    float denom = sqrt(avg) + eps;
    if (momentum > 0.0f) {
        float b = momentum * (first ? 0.0f : momentum_buffer[i]) + g / denom;
        momentum_buffer[i] = b;
        param[i] = p - lr * b;
    } else {
        param[i] = p - lr * g / denom;
    }
}

// step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t), computed on the host.
__kernel void adam_step(__global float* param, __global const float* grad, __global float* exp_avg,
                        __global float* exp_avg_sq, __global float* max_exp_avg_sq, int n,
                        float lr, float beta1, float beta2, float eps, float weight_decay,
                        float step_size, float bc2_sqrt, int decoupled, int amsgrad, int first) {
    int i = get_global_id(0);
    if (i >= n) return;
    float p = param[i];
    float g = grad[i];
    if (weight_decay != 0.0f) {
        if (decoupled) p *= 1.0f - lr * weight_decay;
        else g += weight_decay * p;
    }
    float m = beta1 * (first ? 0.0f : exp_avg[i]) + (1.0f - beta1) * g;
    float v = beta2 * (first ? 0.0f : exp_avg_sq[i]) + (1.0f - beta2) * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    if (amsgrad) {
        v = first ? v : fmax(max_exp_avg_sq[i], v);
        max_exp_avg_sq[i] = v;
    }
    param[i] = p - step_size * m / (sqrt(v) / bc2_sqrt + eps);
}
