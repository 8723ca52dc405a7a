// Reductions over the middle axis of x viewed as [outer, length, inner], softmax and argmax over rows.

#define RED_SUM 0
#define RED_MEAN 1
#define RED_MAX 2
#define RED_MIN 3

inline float red_init(int op) { return op == RED_MAX ? -INFINITY : (op == RED_MIN ? INFINITY : 0.0f); }
inline float red_step(int op, float acc, float v) {
    return op == RED_MAX ? fmax(acc, v) : (op == RED_MIN ? fmin(acc, v) : acc + v);
}

// Reductions with inner > 1 (work-items walk memory in order across j): output (o, j) reduces x[o, l, j] over l.
// The length is split into `parts` nearly equal slices [length*p/parts, length*(p+1)/parts): one work-item per
// (j, o * parts + p), global = [inner, outer * parts]. With parts == 1 an item writes its output's result to
// out[o * inner + j] (divided by `divisor` for the mean); with parts > 1 it writes its slice's partial result (a sum
// for the mean) to out[(o * parts + p) * inner + j], and a second launch with parts == 1 over those partials,
// viewed as [outer, parts, inner], finishes (few outputs over a long axis then use more work-items).
__kernel void reduce_strided(__global const float* x, __global float* out, int outer, int length, int inner, int op,
                             int parts, int divisor) {
    int j = get_global_id(0);
    int row = get_global_id(1);
    if (j >= inner || row >= outer * parts) return;
    int o = row / parts, p = row - o * parts;
    int first = (int)((long)length * p / parts), last = (int)((long)length * (p + 1) / parts);
    __global const float* src = x + (long)o * length * inner + j;
    float acc = red_init(op);
    for (int l = first; l < last; ++l) acc = red_step(op, acc, src[(long)l * inner]);
    if (op == RED_MEAN && parts == 1) acc /= (float)divisor;
    out[(long)row * inner + j] = acc;
}

// Rows of `length` contiguous elements (inner == 1), each split into `parts` parts: one work-group per (row, part),
// group g = row * parts + part, tree reduction in local memory. With parts == 1 a group writes its row's result to
// out[row] (divided by `divisor` for the mean); with parts > 1 it writes its part's partial result (a sum for the
// mean) to out[g], and a second launch with parts == 1 over those partials finishes (long rows of few outputs, such
// as a whole tensor's sum, then use more than one work-group).
__kernel void reduce_rows(__global const float* x, __global float* out, int length, int op, int parts, int divisor,
                          __local float* scratch) {
    int group = get_group_id(0);
    int row = group / parts, part = group % parts;
    int lid = get_local_id(0);
    int size = get_local_size(0);
    __global const float* p = x + (long)row * length;
    float acc = red_init(op);
    for (long l = (long)part * size + lid; l < length; l += (long)parts * size) acc = red_step(op, acc, p[l]);
    scratch[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = size / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] = red_step(op, scratch[lid], scratch[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) out[group] = (op == RED_MEAN && parts == 1) ? scratch[0] / (float)divisor : scratch[0];
}

__kernel void argmax_rows(__global const float* x, __global float* out, int rows, int cols) {
    int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* p = x + (long)r * cols;
    float best = p[0];
    int at = 0;
    for (int c = 1; c < cols; ++c) if (p[c] > best) { best = p[c]; at = c; }
    out[r] = (float)at;
}

// Softmax (or log-softmax when is_log) of each row, stable: the row max is subtracted first.
__kernel void softmax_rows(__global const float* x, __global float* out, int rows, int cols, int is_log) {
    int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* p = x + (long)r * cols;
    __global float* q = out + (long)r * cols;
    float m = -INFINITY;
    for (int c = 0; c < cols; ++c) m = fmax(m, p[c]);
    float s = 0.0f;
    for (int c = 0; c < cols; ++c) s += exp(p[c] - m);
    if (is_log) {
        float ls = log(s) + m;
        for (int c = 0; c < cols; ++c) q[c] = p[c] - ls;
    } else {
        float inv = 1.0f / s;
        for (int c = 0; c < cols; ++c) q[c] = exp(p[c] - m) * inv;
    }
}

// Backward of softmax: gx = y * (gy - sum(gy * y)); of log-softmax: gx = gy - exp(y) * sum(gy).
__kernel void softmax_rows_backward(__global const float* y, __global const float* gy, __global float* gx,
                                    int rows, int cols, int is_log) {
    int r = get_global_id(0);
    if (r >= rows) return;
    long base = (long)r * cols;
    float s = 0.0f;
    if (is_log) {
        for (int c = 0; c < cols; ++c) s += gy[base + c];
        for (int c = 0; c < cols; ++c) gx[base + c] = gy[base + c] - exp(y[base + c]) * s;
    } else {
        for (int c = 0; c < cols; ++c) s += gy[base + c] * y[base + c];
        for (int c = 0; c < cols; ++c) gx[base + c] = y[base + c] * (gy[base + c] - s);
    }
}

// Softmax of each row over its first q + cols - queries + 1 entries (q = row mod queries: a causal mask aligned to
// the last key); the masked entries are 0, so softmax_rows_backward is its backward.
__kernel void softmax_rows_causal(__global const float* x, __global float* out, int rows, int cols, int queries) {
    int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* p = x + (long)r * cols;
    __global float* q = out + (long)r * cols;
    int keys = min(cols, r % queries + cols - queries + 1);
    float m = -INFINITY;
    for (int c = 0; c < keys; ++c) m = fmax(m, p[c]);
    float s = 0.0f;
    for (int c = 0; c < keys; ++c) s += exp(p[c] - m);
    float inv = 1.0f / s;
    for (int c = 0; c < keys; ++c) q[c] = exp(p[c] - m) * inv;
    for (int c = max(keys, 0); c < cols; ++c) q[c] = 0.0f;
}

// The backward of softmax cross-entropy against labels (Sources/Myelin/NN/Losses.swift) in one launch:
// gx = (exp(logp) - onehot) · (g[0] · scale), scale = 1/N from the host; the same values as the four ops it
// replaces (exp, subtract, the scalar g·(1/N), the broadcast multiply), in the same order.
__kernel void softmax_xent_backward(__global const float* logp, __global const float* onehot,
                                    __global const float* g, __global float* gx, int n, float scale) {
    int i = get_global_id(0);
    if (i < n) {
        float e = exp(logp[i]);
        float d = e - onehot[i];
        float s = g[0] * scale;
        gx[i] = d * s;
    }
}
