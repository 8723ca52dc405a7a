// Batch normalization over x [outer, channels, inner]: channel c holds the m = outer*inner values x[n, c, i].
// xhat = (x - mean[c]) / sqrt(variance[c] + epsilon). The per-channel kernels run one work-group per channel
// whose local size is a power of two (the tree halves it).

// A work-group walks channel c's values as rows (one per outer index n) of `inner` contiguous values: `lanes` =
// min(inner, size) work-items share a row (neighbours read neighbouring values), size / lanes rows go at once,
// and the rest of the group idles. Work-item lid starts at row lid / lanes, column lid % lanes; nothing is
// divided per value (a CPU-like device pays dearly for that). BN_ROWS(...) { body using `at` }.
#define BN_ROWS(lid, size, outer, channels, inner, c)                                                          \
    for (int bn_l = min((inner), (size)), bn_n = (lid) / bn_l, bn_step = (size) / bn_l;                     \
         bn_n < (outer) && (lid) < bn_step * bn_l; bn_n += bn_step)                                          \
        for (long bn_row = ((long)bn_n * (channels) + (c)) * (inner), at = bn_row + (lid) % bn_l;            \
             at < bn_row + (inner); at += bn_l)

// Sums scratch[0..size) into scratch[0] (size a power of two); every work-item must call it.
inline void bn_tree_sum(__local float* scratch, int lid, int size) {
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = size / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

// mean[c] and biased variance[c], in two passes (the squares are of centred values).
__kernel void bn_moments(__global const float* x, __global float* mean, __global float* variance,
                         int outer, int channels, int inner, __local float* scratch) {
    int c = get_group_id(0);
    int lid = get_local_id(0);
    int size = get_local_size(0);
    long m = (long)outer * inner;
    float acc = 0.0f;
    BN_ROWS(lid, size, outer, channels, inner, c) acc += x[at];
    scratch[lid] = acc;
    bn_tree_sum(scratch, lid, size);
    float mu = scratch[0] / (float)m;
    barrier(CLK_LOCAL_MEM_FENCE);
    acc = 0.0f;
    BN_ROWS(lid, size, outer, channels, inner, c) {
        float d = x[at] - mu;
        acc += d * d;
    }
    scratch[lid] = acc;
    bn_tree_sum(scratch, lid, size);
    if (lid == 0) {
        mean[c] = mu;
        variance[c] = scratch[0] / (float)m;
    }
}

// y = xhat * weight[c] + bias[c], one work-item per value: global = [inner, channels, outer].
__kernel void bn_apply(__global const float* x, __global float* y, __global const float* mean,
                       __global const float* variance, __global const float* weight, __global const float* bias,
                       float epsilon, int channels, int inner) {
    ROUNDED_GUARD((int)get_global_id(0), inner);
    int c = get_global_id(1);
    long i = ((long)get_global_id(2) * channels + c) * inner + get_global_id(0);
    float scale = weight[c] * rsqrt(variance[c] + epsilon);
    y[i] = (x[i] - mean[c]) * scale + bias[c];
}

// gweight[c] = sum(gy * xhat) and gbias[c] = sum(gy) over channel c; scratch holds 2 * local size floats.
__kernel void bn_backward_sums(__global const float* x, __global const float* gy, __global const float* mean,
                               __global const float* variance, __global float* gweight, __global float* gbias,
                               float epsilon, int outer, int channels, int inner, __local float* scratch) {
    int c = get_group_id(0);
    int lid = get_local_id(0);
    int size = get_local_size(0);
    float mu = mean[c];
    float sumG = 0.0f, sumGX = 0.0f;
    BN_ROWS(lid, size, outer, channels, inner, c) {
        float g = gy[at];
        sumG += g;
        sumGX += g * (x[at] - mu);
    }
    __local float* scratchG = scratch;
    __local float* scratchGX = scratch + size;
    scratchG[lid] = sumG;
    scratchGX[lid] = sumGX;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = size / 2; s > 0; s >>= 1) {
        if (lid < s) {
            scratchG[lid] += scratchG[lid + s];
            scratchGX[lid] += scratchGX[lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        gbias[c] = scratchG[0];
        gweight[c] = scratchGX[0] * rsqrt(variance[c] + epsilon);
    }
}

// gx = weight[c] * invstd * (gy - (gbias[c] + xhat * gweight[c]) / m) for batch statistics (batch_stats != 0),
// weight[c] * invstd * gy for constant ones.
__kernel void bn_backward_input(__global const float* x, __global const float* gy, __global const float* mean,
                                __global const float* variance, __global const float* weight,
                                __global const float* gweight, __global const float* gbias, __global float* gx,
                                float epsilon, int batch_stats, int outer, int channels, int inner) {
    ROUNDED_GUARD((int)get_global_id(0), inner);
    int c = get_global_id(1);
    long i = ((long)get_global_id(2) * channels + c) * inner + get_global_id(0);
    float invstd = rsqrt(variance[c] + epsilon);
    float k = weight[c] * invstd;
    float g = gy[i];
    if (batch_stats) {
        float m = (float)outer * (float)inner;
        float xhat = (x[i] - mean[c]) * invstd;
        g -= (gbias[c] + xhat * gweight[c]) / m;
    }
    gx[i] = k * g;
}

// Max pooling of the planes of x [planes, height, width] (padding reads -INFINITY): one work-item per output;
// ties counts the window positions equal to the maximum (padding included), which share its gradient.
__kernel void max_pool_forward(__global const float* x, __global float* y, __global float* ties, int height, int width,
                               int out_h, int out_w, int kernel_h, int kernel_w, int stride_h, int stride_w,
                               int pad_h, int pad_w, int count) {
    int o = get_global_id(0);
    if (o >= count) return;
    int p = o / (out_h * out_w), rest = o - p * out_h * out_w;
    int oh = rest / out_w, ow = rest - oh * out_w;
    __global const float* src = x + (long)p * height * width;
    float best = -INFINITY;
    for (int i = 0; i < kernel_h; ++i) {
        int r = oh * stride_h - pad_h + i;
        if (r < 0 || r >= height) continue;
        for (int j = 0; j < kernel_w; ++j) {
            int c = ow * stride_w - pad_w + j;
            if (c >= 0 && c < width && src[r * width + c] > best) best = src[r * width + c];
        }
    }
    int tied = 0;
    for (int i = 0; i < kernel_h; ++i) {
        int r = oh * stride_h - pad_h + i;
        for (int j = 0; j < kernel_w; ++j) {
            int c = ow * stride_w - pad_w + j;
            float v = (r >= 0 && r < height && c >= 0 && c < width) ? src[r * width + c] : -INFINITY;
            if (v == best) tied += 1;
        }
    }
    y[o] = best;
    ties[o] = (float)tied;
}

// The common 2x2 window with stride 2 and no padding, without an integer division per element (which a
// CPU-like device pays dearly for): one work-item per output, global = [out_w, out_h, planes].
__kernel void max_pool2x2_forward(__global const float* x, __global float* y, __global float* ties, int height,
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
    ties[o] = (float)((a == best) + (b == best) + (c == best) + (d == best));
}

// Its backward: one work-item per 2x2 block of the input, global = [ceil(width/2), ceil(height/2), planes]. The
// windows do not overlap, so each input gets the share of the one window holding it (or 0 outside every window:
// the last row or column of an odd size).
__kernel void max_pool2x2_backward(__global const float* x, __global const float* y, __global const float* ties,
                                   __global const float* gy, __global float* gx, int height, int width, int out_h,
                                   int out_w) {
    int bw = get_global_id(0), bh = get_global_id(1), p = get_global_id(2);
    int r0 = 2 * bh, c0 = 2 * bw;
    if (r0 >= height || c0 >= width) return;
    int inside = bh < out_h && bw < out_w;
    long o = ((long)p * out_h + bh) * out_w + bw;
    float best = inside ? y[o] : 0.0f, share = inside ? gy[o] / ties[o] : 0.0f;
    long base = (long)p * height * width;
    for (int r = r0; r < min(r0 + 2, height); ++r) {
        for (int c = c0; c < min(c0 + 2, width); ++c) {
            long at = base + (long)r * width + c;
            gx[at] = inside && x[at] == best ? share : 0.0f;
        }
    }
}

// gx[plane, r, c] = sum over the windows holding (r, c) at their maximum of gy / ties: one work-item per input.
__kernel void max_pool_backward(__global const float* x, __global const float* y, __global const float* ties,
                                __global const float* gy, __global float* gx, int height, int width, int out_h,
                                int out_w, int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h,
                                int pad_w, int count) {
    int i = get_global_id(0);
    if (i >= count) return;
    int p = i / (height * width), rest = i - p * height * width;
    int r = rest / width, c = rest - r * width;
    float v = x[i];
    int low_h = r + pad_h - kernel_h + 1, low_w = c + pad_w - kernel_w + 1;
    int oh0 = low_h <= 0 ? 0 : (low_h + stride_h - 1) / stride_h;
    int ow0 = low_w <= 0 ? 0 : (low_w + stride_w - 1) / stride_w;
    int oh1 = min(out_h - 1, (r + pad_h) / stride_h), ow1 = min(out_w - 1, (c + pad_w) / stride_w);
    long base = (long)p * out_h * out_w;
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; ++oh) {
        for (int ow = ow0; ow <= ow1; ++ow) {
            long at = base + oh * out_w + ow;
            if (v == y[at]) acc += gy[at] / ties[at];
        }
    }
    gx[i] = acc;
}
