// Batch normalization over x [outer, channels, inner]: channel c holds the m = outer*inner values x[n, c, i].
// xhat = (x - mean[c]) / sqrt(variance[c] + epsilon).
//
// The per-channel sums run in two stages. Stage 1 (bn_moments, bn_backward_sums) runs `parts` work-groups per
// channel: group g takes channel c = g / parts and part p = g % parts, the p-th of `parts` nearly equal slices
// [m*p/parts, m*(p+1)/parts) of the channel's values counted in order (row n, column i). Its local size is a power
// of two (the tree halves it). With parts == 1 the group writes the channel's results; otherwise it writes two
// partial sums to partials[2*g], partials[2*g + 1], and stage 2 (bn_moments_combine, bn_backward_sums_combine,
// one work-item per channel) adds the channel's partials in order p = 0, 1, ... and writes the results. No atomics:
// the same sizes give the same result bit for bit.

// The first and one-past-last value index (in row-major order over [outer, inner]) of part p of `parts`.
inline long bn_part_start(long m, int p, int parts) { return m * p / parts; }

// Work-item lid of a group of `size` walks the values k = first + lid, first + lid + size, ... below last of
// channel c. `at` is the address of x[n, c, i] for k = n * inner + i; a step of `size` values moves i by
// size % inner and n by size / inner (plus one row when i wraps), so nothing is divided per value (a CPU-like
// device pays dearly for that). Neighbouring work-items read neighbouring values. BN_WALK(...) { body using `at` }.
#define BN_WALK(first, last, lid, size, channels, inner, c)                                                   \
    for (long bn_k = (first) + (lid), bn_i = bn_k % (inner),                                                  \
              at = ((bn_k / (inner)) * (channels) + (c)) * (inner) + bn_i,                                     \
              bn_di = (size) % (inner), bn_dat = (long)((size) / (inner)) * (channels) * (inner) + bn_di,     \
              bn_wrap = (long)(channels - 1) * (inner);                                                       \
         bn_k < (last);                                                                                        \
         bn_k += (size), bn_i += bn_di, at += bn_dat,                                                          \
              at += bn_i >= (inner) ? bn_wrap : 0, bn_i -= bn_i >= (inner) ? (inner) : 0)

// Sums a[0..size) into a[0] and b[0..size) into b[0] (size a power of two); every work-item must call it.
inline void bn_tree_sum2(__local float* a, __local float* b, int lid, int size) {
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = size / 2; s > 0; s >>= 1) {
        if (lid < s) {
            a[lid] += a[lid + s];
            b[lid] += b[lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

// The running statistics' update of a train-mode batch norm from channel c's mean mu and biased variance var, when
// has_running (BatchNormRunning in LayerBackends.swift): the two products and the sum as separate statements, so
// the result is that of the separate launches it replaces (running * keep, statistic * factor, their sum), bit for
// bit. Channel 0 also counts the batch in tracked[0].
inline void bn_update_running(int c, float mu, float var, __global float* running_mean, __global float* running_var,
                              __global float* tracked, float keep, float momentum, float var_factor, int has_running) {
    if (!has_running) return;
    float old_mean = running_mean[c] * keep, new_mean = mu * momentum;
    running_mean[c] = old_mean + new_mean;
    float old_var = running_var[c] * keep, new_var = var * var_factor;
    running_var[c] = old_var + new_var;
    if (c == 0) tracked[0] += 1.0f;
}

// Stage 1 of mean[c] and biased variance[c], in one pass over x: the sums of d = x - shift and of d * d, where
// the shift is the channel's first value x[0, c, 0] (the same for every part). Subtracting a value of the channel
// keeps the squares small when the mean is large compared with the spread (1000 + noise: d is then exact), so
// variance = S2/m - (S1/m)^2 loses no digits to cancellation. scratch holds 2 * local size floats.
__kernel void bn_moments(__global const float* x, __global float* mean, __global float* variance,
                         __global float* partials, int outer, int channels, int inner, int parts,
                         __local float* scratch, __global float* running_mean, __global float* running_var,
                         __global float* tracked, float keep, float momentum, float var_factor, int has_running) {
    int g = get_group_id(0);
    int c = g / parts, p = g - c * parts;
    int lid = get_local_id(0);
    int size = get_local_size(0);
    long m = (long)outer * inner;
    float shift = x[(long)c * inner];
    float s1 = 0.0f, s2 = 0.0f;
    BN_WALK(bn_part_start(m, p, parts), bn_part_start(m, p + 1, parts), lid, size, channels, inner, c) {
        float d = x[at] - shift;
        s1 += d;
        s2 += d * d;
    }
    __local float* scratch1 = scratch;
    __local float* scratch2 = scratch + size;
    scratch1[lid] = s1;
    scratch2[lid] = s2;
    bn_tree_sum2(scratch1, scratch2, lid, size);
    if (lid != 0) return;
    if (parts == 1) {
        float d = scratch1[0] / (float)m;
        float mu = shift + d, var = fmax(scratch2[0] / (float)m - d * d, 0.0f);
        mean[c] = mu;
        variance[c] = var;
        bn_update_running(c, mu, var, running_mean, running_var, tracked, keep, momentum, var_factor, has_running);
    } else {
        partials[2 * g] = scratch1[0];
        partials[2 * g + 1] = scratch2[0];
    }
}

// Stage 2 of bn_moments: adds channel c's `parts` partial sums in order and writes mean[c] and variance[c].
__kernel void bn_moments_combine(__global const float* x, __global const float* partials, __global float* mean,
                                 __global float* variance, int outer, int channels, int inner, int parts,
                                 __global float* running_mean, __global float* running_var, __global float* tracked,
                                 float keep, float momentum, float var_factor, int has_running) {
    int c = get_global_id(0);
    if (c >= channels) return;
    float s1 = 0.0f, s2 = 0.0f;
    for (int p = 0; p < parts; ++p) {
        s1 += partials[2 * (c * parts + p)];
        s2 += partials[2 * (c * parts + p) + 1];
    }
    float m = (float)outer * (float)inner;
    float d = s1 / m;
    float mu = x[(long)c * inner] + d, var = fmax(s2 / m - d * d, 0.0f);
    mean[c] = mu;
    variance[c] = var;
    bn_update_running(c, mu, var, running_mean, running_var, tracked, keep, momentum, var_factor, has_running);
}

// Stage 1 of gbias[c] = sum(gy) and gweight[c] = sum(gy * xhat) = invstd * sum(gy * (x - mean[c])) over channel c,
// in one pass over x and gy. With has_mask (bn_backward_sums_masked), gy counts as gy * (mask > 0): the backward of
// a ReLU fused into the apply (mask is its output), as actgrad_relu computes it. scratch holds 2 * local size
// floats. The flags of this and the fused kernels below are compile-time constants of each kernel (a kernel per
// combination, named by it), so that a CPU-like device (PoCL) still vectorizes the work-group loop.
inline void bn_backward_sums_body(__global const float* x, __global const float* gy, __global const float* mask,
                                  const int has_mask, __global const float* mean, __global const float* variance,
                                  __global float* gweight, __global float* gbias, __global float* partials,
                                  float epsilon, int outer, int channels, int inner, int parts,
                                  __local float* scratch) {
    int g = get_group_id(0);
    int c = g / parts, p = g - c * parts;
    int lid = get_local_id(0);
    int size = get_local_size(0);
    long m = (long)outer * inner;
    float mu = mean[c];
    float sumG = 0.0f, sumGX = 0.0f;
    BN_WALK(bn_part_start(m, p, parts), bn_part_start(m, p + 1, parts), lid, size, channels, inner, c) {
        float v = gy[at];
        if (has_mask) v *= mask[at] > 0.0f ? 1.0f : 0.0f;
        sumG += v;
        sumGX += v * (x[at] - mu);
    }
    __local float* scratchG = scratch;
    __local float* scratchGX = scratch + size;
    scratchG[lid] = sumG;
    scratchGX[lid] = sumGX;
    bn_tree_sum2(scratchG, scratchGX, lid, size);
    if (lid != 0) return;
    if (parts == 1) {
        gbias[c] = scratchG[0];
        gweight[c] = scratchGX[0] * rsqrt(variance[c] + epsilon);
    } else {
        partials[2 * g] = scratchG[0];
        partials[2 * g + 1] = scratchGX[0];
    }
}
#define BN_BACKWARD_SUMS(NAME, HAS_MASK)                                                                      \
    __kernel void NAME(__global const float* x, __global const float* gy, __global const float* mask,             \
                       __global const float* mean, __global const float* variance, __global float* gweight,       \
                       __global float* gbias, __global float* partials, float epsilon, int outer, int channels,   \
                       int inner, int parts, __local float* scratch) {                                            \
        bn_backward_sums_body(x, gy, mask, HAS_MASK, mean, variance, gweight, gbias, partials, epsilon, outer,    \
                              channels, inner, parts, scratch);                                                   \
    }
BN_BACKWARD_SUMS(bn_backward_sums, 0)
BN_BACKWARD_SUMS(bn_backward_sums_masked, 1)

// Stage 2 of bn_backward_sums: adds channel c's `parts` partial sums in order and writes gbias[c] and gweight[c].
__kernel void bn_backward_sums_combine(__global const float* partials, __global const float* variance,
                                       __global float* gweight, __global float* gbias, float epsilon, int channels,
                                       int parts) {
    int c = get_global_id(0);
    if (c >= channels) return;
    float sumG = 0.0f, sumGX = 0.0f;
    for (int p = 0; p < parts; ++p) {
        sumG += partials[2 * (c * parts + p)];
        sumGX += partials[2 * (c * parts + p) + 1];
    }
    gbias[c] = sumG;
    gweight[c] = sumGX * rsqrt(variance[c] + epsilon);
}

// y = xhat * weight[c] + bias[c], then + residual[i] (has_residual), then max(., 0) (relu), one work-item per
// value: global = [inner, channels, outer]. Each step is its own statement, as the separate launches computed it.
inline void bn_apply_body(__global const float* x, __global float* y, __global const float* mean,
                          __global const float* variance, __global const float* weight, __global const float* bias,
                          __global const float* residual, const int has_residual, const int relu, float epsilon,
                          int channels, int inner) {
    ROUNDED_GUARD((int)get_global_id(0), inner);
    int c = get_global_id(1);
    long i = ((long)get_global_id(2) * channels + c) * inner + get_global_id(0);
    float scale = weight[c] * rsqrt(variance[c] + epsilon);
    float v = (x[i] - mean[c]) * scale + bias[c];
    if (has_residual) v = v + residual[i];
    if (relu) v = fmax(v, 0.0f);
    y[i] = v;
}
#define BN_APPLY(NAME, HAS_RESIDUAL, RELU)                                                                    \
    __kernel void NAME(__global const float* x, __global float* y, __global const float* mean,                  \
                       __global const float* variance, __global const float* weight, __global const float* bias,  \
                       __global const float* residual, float epsilon, int channels, int inner) {                 \
        bn_apply_body(x, y, mean, variance, weight, bias, residual, HAS_RESIDUAL, RELU, epsilon, channels, inner); \
    }
BN_APPLY(bn_apply, 0, 0)
BN_APPLY(bn_apply_relu, 0, 1)
BN_APPLY(bn_apply_residual, 1, 0)
BN_APPLY(bn_apply_residual_relu, 1, 1)

// gx = weight[c] * invstd * (gy - (gbias[c] + xhat * gweight[c]) / m) for batch statistics (batch_stats != 0),
// weight[c] * invstd * gy for constant ones; gy masked as in bn_backward_sums (has_mask). With has_gresidual the
// (masked) gy is also written to gresidual: the gradient of the apply's residual.
inline void bn_backward_input_body(__global const float* x, __global const float* gy, __global const float* mask,
                                   const int has_mask, __global const float* mean, __global const float* variance,
                                   __global const float* weight, __global const float* gweight,
                                   __global const float* gbias, __global float* gx, __global float* gresidual,
                                   const int has_gresidual, float epsilon, int batch_stats, int outer, int channels,
                                   int inner) {
    ROUNDED_GUARD((int)get_global_id(0), inner);
    int c = get_global_id(1);
    long i = ((long)get_global_id(2) * channels + c) * inner + get_global_id(0);
    float invstd = rsqrt(variance[c] + epsilon);
    float k = weight[c] * invstd;
    float g = gy[i];
    if (has_mask) g *= mask[i] > 0.0f ? 1.0f : 0.0f;
    if (has_gresidual) gresidual[i] = g;
    if (batch_stats) {
        float m = (float)outer * (float)inner;
        float xhat = (x[i] - mean[c]) * invstd;
        g -= (gbias[c] + xhat * gweight[c]) / m;
    }
    gx[i] = k * g;
}
#define BN_BACKWARD_INPUT(NAME, HAS_MASK, HAS_GRESIDUAL)                                                      \
    __kernel void NAME(__global const float* x, __global const float* gy, __global const float* mask,             \
                       __global const float* mean, __global const float* variance, __global const float* weight,  \
                       __global const float* gweight, __global const float* gbias, __global float* gx,            \
                       __global float* gresidual, float epsilon, int batch_stats, int outer, int channels,        \
                       int inner) {                                                                               \
        bn_backward_input_body(x, gy, mask, HAS_MASK, mean, variance, weight, gweight, gbias, gx, gresidual,      \
                               HAS_GRESIDUAL, epsilon, batch_stats, outer, channels, inner);                      \
    }
BN_BACKWARD_INPUT(bn_backward_input, 0, 0)
BN_BACKWARD_INPUT(bn_backward_input_masked, 1, 0)
BN_BACKWARD_INPUT(bn_backward_input_residual, 0, 1)
BN_BACKWARD_INPUT(bn_backward_input_masked_residual, 1, 1)

// Max pooling of the planes of x [planes, height, width] (padding reads -INFINITY): one work-item per output;
// argmax is the window position (i * kernel_w + j) of the first maximum in window order, PyTorch's choice on ties
// (-1 when no position holds it: an all-NaN window), which takes the window's whole gradient.
__kernel void max_pool_forward(__global const float* x, __global float* y, __global float* argmax, int height, int width,
                               int out_h, int out_w, int kernel_h, int kernel_w, int stride_h, int stride_w,
                               int pad_h, int pad_w, int count) {
    int o = get_global_id(0);
    if (o >= count) return;
    int p = o / (out_h * out_w), rest = o - p * out_h * out_w;
    int oh = rest / out_w, ow = rest - oh * out_w;
    __global const float* src = x + (long)p * height * width;
    float best = -INFINITY;
    int first = -1;
    for (int i = 0; i < kernel_h; ++i) {
        int r = oh * stride_h - pad_h + i;
        if (r < 0 || r >= height) continue;
        for (int j = 0; j < kernel_w; ++j) {
            int c = ow * stride_w - pad_w + j;
            if (c < 0 || c >= width) continue;
            float v = src[r * width + c];
            if (v > best || (first < 0 && v == best)) { best = v; first = i * kernel_w + j; }
        }
    }
    y[o] = best;
    argmax[o] = (float)first;
}

// The common 2x2 window with stride 2 and no padding, without an integer division per element (which a
// CPU-like device pays dearly for): one work-item per output, global = [out_w, out_h, planes].
__kernel void max_pool2x2_forward(__global const float* x, __global float* y, __global float* argmax, int height,
                                  int width, int out_h, int out_w) {
    int ow = get_global_id(0), oh = get_global_id(1), p = get_global_id(2);
    if (ow >= out_w || oh >= out_h) return;
    __global const float* top = x + ((long)p * height + 2 * oh) * width + 2 * ow;
    float a = top[0], b = top[1], c = top[width], d = top[width + 1];
    float best = -INFINITY;
    best = a > best ? a : best;
    best = b > best ? b : best;
    best = c > best ? c : best;
    best = d > best ? d : best;
    long o = ((long)p * out_h + oh) * out_w + ow;
    y[o] = best;
    argmax[o] = a == best ? 0.0f : b == best ? 1.0f : c == best ? 2.0f : d == best ? 3.0f : -1.0f;
}

// Its backward: one work-item per 2x2 block of the input, global = [ceil(width/2), ceil(height/2), planes]. The
// windows do not overlap, so each input gets the gradient of the one window holding it when it is that window's
// argmax (or 0 outside every window: the last row or column of an odd size).
__kernel void max_pool2x2_backward(__global const float* x, __global const float* y, __global const float* argmax,
                                   __global const float* gy, __global float* gx, int height, int width, int out_h,
                                   int out_w) {
    int bw = get_global_id(0), bh = get_global_id(1), p = get_global_id(2);
    int r0 = 2 * bh, c0 = 2 * bw;
    if (r0 >= height || c0 >= width) return;
    int inside = bh < out_h && bw < out_w;
    long o = ((long)p * out_h + bh) * out_w + bw;
    float k = inside ? argmax[o] : -1.0f, g = inside ? gy[o] : 0.0f;
    long base = (long)p * height * width;
    for (int r = r0; r < min(r0 + 2, height); ++r) {
        for (int c = c0; c < min(c0 + 2, width); ++c) {
            gx[base + (long)r * width + c] = k == (float)(2 * (r - r0) + (c - c0)) ? g : 0.0f;
        }
    }
}

// gx[plane, r, c] = sum of gy over the windows whose argmax is (r, c): one work-item per input.
__kernel void max_pool_backward(__global const float* x, __global const float* y, __global const float* argmax,
                                __global const float* gy, __global float* gx, int height, int width, int out_h,
                                int out_w, int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h,
                                int pad_w, int count) {
    int i = get_global_id(0);
    if (i >= count) return;
    int p = i / (height * width), rest = i - p * height * width;
    int r = rest / width, c = rest - r * width;
    int low_h = r + pad_h - kernel_h + 1, low_w = c + pad_w - kernel_w + 1;
    int oh0 = low_h <= 0 ? 0 : (low_h + stride_h - 1) / stride_h;
    int ow0 = low_w <= 0 ? 0 : (low_w + stride_w - 1) / stride_w;
    int oh1 = min(out_h - 1, (r + pad_h) / stride_h), ow1 = min(out_w - 1, (c + pad_w) / stride_w);
    long base = (long)p * out_h * out_w;
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; ++oh) {
        for (int ow = ow0; ow <= ow1; ++ow) {
            long at = base + oh * out_w + ow;
            int k = (r + pad_h - oh * stride_h) * kernel_w + (c + pad_w - ow * stride_w);
            if (argmax[at] == (float)k) acc += gy[at];
        }
    }
    gx[i] = acc;
}

// Layer normalization of each row of x [rows, cols] (one work-item per row): x̂ = (x - mean) * rstd with
// rstd = 1 / sqrt(biased variance + epsilon); weight and bias [cols] may be null (1 and 0).
__kernel void layer_norm_forward(__global const float* x, __global float* y, __global float* mean, __global float* rstd,
                                 __global const float* weight, __global const float* bias, int rows, int cols,
                                 float epsilon) {
    int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* p = x + (long)r * cols;
    __global float* q = y + (long)r * cols;
    float s = 0.0f;
    for (int c = 0; c < cols; ++c) s += p[c];
    float m = s / cols;
    float v = 0.0f;
    for (int c = 0; c < cols; ++c) v += (p[c] - m) * (p[c] - m);
    float inv = 1.0f / sqrt(v / cols + epsilon);
    mean[r] = m;
    rstd[r] = inv;
    for (int c = 0; c < cols; ++c) {
        q[c] = (p[c] - m) * inv * (weight ? weight[c] : 1.0f) + (bias ? bias[c] : 0.0f);
    }
}

// gx = rstd * (g - mean(g) - x̂ * mean(g * x̂)) per row, with g = gy * weight (one work-item per row).
__kernel void layer_norm_backward_input(__global const float* x, __global const float* gy, __global const float* mean,
                                        __global const float* rstd, __global const float* weight, __global float* gx,
                                        int rows, int cols) {
    int r = get_global_id(0);
    if (r >= rows) return;
    long base = (long)r * cols;
    float m = mean[r], inv = rstd[r];
    float sg = 0.0f, sgx = 0.0f;
    for (int c = 0; c < cols; ++c) {
        float g = gy[base + c] * (weight ? weight[c] : 1.0f);
        sg += g;
        sgx += g * (x[base + c] - m) * inv;
    }
    float mg = sg / cols, mgx = sgx / cols;
    for (int c = 0; c < cols; ++c) {
        float g = gy[base + c] * (weight ? weight[c] : 1.0f);
        gx[base + c] = inv * (g - mg - (x[base + c] - m) * inv * mgx);
    }
}

// gweight[c] = sum over rows of gy * x̂ and gbias[c] = sum of gy (one work-item per column; either may be null).
__kernel void layer_norm_backward_parameters(__global const float* x, __global const float* gy,
                                             __global const float* mean, __global const float* rstd,
                                             __global float* gweight, __global float* gbias, int rows, int cols) {
    int c = get_global_id(0);
    if (c >= cols) return;
    float sw = 0.0f, sb = 0.0f;
    for (int r = 0; r < rows; ++r) {
        long i = (long)r * cols + c;
        sw += gy[i] * (x[i] - mean[r]) * rstd[r];
        sb += gy[i];
    }
    if (gweight) gweight[c] = sw;
    if (gbias) gbias[c] = sb;
}
