// Data movement: transpose of the last two axes, gather/scatter of rows, one-hot.

// Square work-groups of t x t items (t = the local size, chosen by the host within the device's limits) move
// a t x t tile through local memory of t x (t + 1) floats (the padding column avoids bank conflicts).
__kernel void transpose_batched(__global const float* x, __global float* out, int rows, int cols,
                                __local float* tile) {
    int t = get_local_size(0);
    int b = get_global_id(2);
    int c = get_global_id(0), r = get_global_id(1);
    int lc = get_local_id(0), lr = get_local_id(1);
    long base = (long)b * rows * cols;
    if (r < rows && c < cols) tile[lr * (t + 1) + lc] = x[base + (long)r * cols + c];
    barrier(CLK_LOCAL_MEM_FENCE);
    int oc = get_group_id(1) * t + lc;  // output column = input row
    int orow = get_group_id(0) * t + lr; // output row = input column
    if (orow < cols && oc < rows) out[base + (long)orow * rows + oc] = tile[lc * (t + 1) + lr];
}

__kernel void gather_rows(__global const float* x, __global const float* indices, __global float* out,
                          int count, int row_size, int rows) {
    int j = get_global_id(0);
    int i = get_global_id(1);
    if (j >= row_size || i >= count) return;
    float v = indices[i];
    // An index outside 0..<rows (or NaN, which fails both tests) reads nothing and gives 0.
    out[(long)i * row_size + j] = (v >= 0.0f && v < (float)rows) ? x[(long)(int)v * row_size + j] : 0.0f;
}

// out[indices[i], j] += gy[i, j], safe when indices repeat (compare-and-swap on the float's bits).
__kernel void scatter_add_rows(__global const float* gy, __global const float* indices, __global float* out,
                               int count, int row_size, int rows) {
    int j = get_global_id(0);
    int i = get_global_id(1);
    if (j >= row_size || i >= count) return;
    float v = indices[i];
    if (!(v >= 0.0f && v < (float)rows)) return;  // out of range or NaN: nothing to add to
    int dst = (int)v;
    volatile __global int* target = (volatile __global int*)(out + (long)dst * row_size + j);
    float add = gy[(long)i * row_size + j];
    // Every access to the target is atomic (a plain first read would race with other items' updates): the
    // first compare-and-swap guesses 0.0f and, when wrong, returns the value to retry with.
    int old = as_int(0.0f), assumed;
    do {
        assumed = old;
        old = atomic_cmpxchg(target, assumed, as_int(as_float(assumed) + add));
    } while (old != assumed);
}

__kernel void one_hot(__global const float* indices, __global float* out, int count, int classes) {
    int c = get_global_id(0);
    int i = get_global_id(1);
    if (c >= classes || i >= count) return;
    float v = indices[i];
    int label = (v >= 0.0f && v < (float)classes && floor(v) == v) ? (int)v : -1;
    out[(long)i * classes + c] = (label == c) ? 1.0f : 0.0f;
}

// out = x permuted: out is row-major over dims d0..d5 (leading 1s pad a shorter permutation) and its element
// (i0, ..., i5) is x[i0·s0 + ... + i5·s5] (the input strides of the output axes). One work-item per element.
__kernel void permute_axes(__global const float* x, __global float* out, int count,
                           int d1, int d2, int d3, int d4, int d5,
                           int s0, int s1, int s2, int s3, int s4, int s5) {
    int i = get_global_id(0);
    if (i >= count) return;
    int rest = i;
    long src = (long)(rest % d5) * s5; rest /= d5;
    src += (long)(rest % d4) * s4; rest /= d4;
    src += (long)(rest % d3) * s3; rest /= d3;
    src += (long)(rest % d2) * s2; rest /= d2;
    src += (long)(rest % d1) * s1; rest /= d1;
    src += (long)rest * s0;
    out[i] = x[src];
}

// permute_axes for a layout whose last output axis is contiguous in x too (its input stride is 1, as when the
// head axis of [B, T, H, D] moves and D stays last): global [d5, rows], rows = count / d5. The index arithmetic is
// per row (uniform across the work-items of a row) and the work-items of a row copy one contiguous run, which
// PoCL turns into vector loads and stores; permute_axes's five divisions per element cost it a third of a BERT
// forward there.
__kernel void permute_rows(__global const float* x, __global float* out, int rows,
                           int d1, int d2, int d3, int d4, int d5, int s0, int s1, int s2, int s3, int s4) {
    int j = get_global_id(0), r = get_global_id(1);
    ROUNDED_GUARD(j, d5);
    ROUNDED_GUARD(r, rows);
    int rest = r;
    long src = (long)(rest % d4) * s4; rest /= d4;
    src += (long)(rest % d3) * s3; rest /= d3;
    src += (long)(rest % d2) * s2; rest /= d2;
    src += (long)(rest % d1) * s1; rest /= d1;
    src += (long)rest * s0;
    out[(long)r * d5 + j] = x[src + j];
}
