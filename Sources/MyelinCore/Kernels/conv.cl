// Convolution data movement over NCHW images: im2col (unfold patches into columns) and its adjoint col2im.
// Geometry: n images of c channels, h x w pixels; kernel kh x kw, stride sh x sw, padding ph x pw;
// output oh x ow positions. cols is [n, c*kh*kw, oh*ow].

// One work item per cols element: global = [oh*ow, c*kh*kw, n].
__kernel void im2col(__global const float* x, __global float* cols,
                     int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
                     int oh, int ow, float pad_value) {
    int pos = get_global_id(0);
    int row = get_global_id(1);
    int n = get_global_id(2);
    int rows = c * kh * kw;
    if (pos >= oh * ow || row >= rows) return;
    int ch = row / (kh * kw), i = (row / kw) % kh, j = row % kw;
    int y = pos / ow, xo = pos % ow;
    int hi = y * sh - ph + i, wi = xo * sw - pw + j;
    float v = pad_value;
    if (hi >= 0 && hi < h && wi >= 0 && wi < w) v = x[(((long)n * c + ch) * h + hi) * w + wi];
    cols[((long)n * rows + row) * (oh * ow) + pos] = v;
}

// The sum of the column entries that read pixel (hi, wi) of channel ch: entry (row (ch*kh + i)*kw + j, output
// position y*ow + xo) is cols[((ch*kh + i)*kw + j) * row_stride + y*ow + xo], for every kernel offset (i, j) and
// output position whose window covers the pixel (col2im and conv_fold: the adjoint of an unfold).
inline float fold_pixel(__global const float* cols, long row_stride, int ch, int hi, int wi, int kh, int kw,
                        int sh, int sw, int ph, int pw, int oh, int ow) {
    float sum = 0.0f;
    for (int i = 0; i < kh; i++) {
        int ty = hi + ph - i;            // = y * sh for the output row y that reads (hi, .) at kernel row i
        if (ty < 0 || ty % sh != 0) continue;
        int y = ty / sh;
        if (y >= oh) continue;
        for (int j = 0; j < kw; j++) {
            int tx = wi + pw - j;
            if (tx < 0 || tx % sw != 0) continue;
            int xo = tx / sw;
            if (xo >= ow) continue;
            sum += cols[((ch * kh + i) * kw + j) * row_stride + y * ow + xo];
        }
    }
    return sum;
}

// One work item per image pixel, which gathers every patch entry read from it: global = [w, h, n*c].
__kernel void col2im(__global const float* cols, __global float* x,
                     int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
                     int oh, int ow) {
    int wi = get_global_id(0);
    int hi = get_global_id(1);
    int plane = get_global_id(2);
    if (wi >= w || hi >= h) return;
    int n = plane / c, ch = plane % c;
    int rows = c * kh * kw, l = oh * ow;
    x[((long)plane * h + hi) * w + wi] = fold_pixel(cols + (long)n * rows * l, l, ch, hi, wi, kh, kw, sh, sw, ph, pw, oh, ow);
}

// The chunked convolution (ChunkedConvolution.swift): a chunk is `images` images from `n0`; its column matrix
// is [c*kh*kw, images*L] (L = oh*ow) with image b's patches in columns b*L..(b+1)*L.

// One work item per column entry: global = [L, c*kh*kw, images].
__kernel void conv_unfold(__global const float* x, __global float* cols,
                          int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
                          int oh, int ow, int n0, int images) {
    int pos = get_global_id(0);
    int row = get_global_id(1);
    int b = get_global_id(2);
    int l = oh * ow;
    if (pos >= l || row >= c * kh * kw || b >= images) return;
    int ch = row / (kh * kw), i = (row / kw) % kh, j = row % kw;
    int y = pos / ow, xo = pos - y * ow;
    int hi = y * sh - ph + i, wi = xo * sw - pw + j;
    float v = 0.0f;
    if (hi >= 0 && hi < h && wi >= 0 && wi < w) v = x[(((long)(n0 + b) * c + ch) * h + hi) * w + wi];
    cols[(long)row * images * l + (long)b * l + pos] = v;
}

// The output columns xo whose input column xo*sw - pw + j lies in 0..<w, for kernel column j: *lo..<*hi.
inline void conv_valid_columns(int ow, int sw, int pw, int j, int w, int* lo, int* hi) {
    int a = 0;
    while (a < ow && a * sw - pw + j < 0) a++;
    int b = a;
    while (b < ow && b * sw - pw + j < w) b++;
    *lo = a;
    *hi = b;
}

// The same columns, one work item per (patch row, image) that walks the output positions in order: no integer
// division per element, which a CPU-like device (PoCL) pays dearly for; a GPU keeps conv_unfold, whose
// neighbouring work items write neighbouring addresses. global = [c*kh*kw, images].
__kernel void conv_unfold_rows(__global const float* x, __global float* cols,
                               int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
                               int oh, int ow, int n0, int images) {
    int row = get_global_id(0);
    int b = get_global_id(1);
    if (row >= c * kh * kw || b >= images) return;
    int ch = row / (kh * kw), i = (row / kw) % kh, j = row % kw;
    int l = oh * ow;
    __global const float* plane = x + ((long)(n0 + b) * c + ch) * h * w;
    __global float* out = cols + (long)row * images * l + (long)b * l;
    int lo, hi;
    conv_valid_columns(ow, sw, pw, j, w, &lo, &hi);
    for (int y = 0; y < oh; y++) {
        int r = y * sh - ph + i;
        __global float* o = out + y * ow;
        if (r < 0 || r >= h) {
            for (int xo = 0; xo < ow; xo++) o[xo] = 0.0f;
            continue;
        }
        __global const float* src = plane + (long)r * w - pw + j;
        for (int xo = 0; xo < lo; xo++) o[xo] = 0.0f;
        for (int xo = lo; xo < hi; xo++) o[xo] = src[xo * sw];
        for (int xo = hi; xo < ow; xo++) o[xo] = 0.0f;
    }
}

// One work item per image pixel of the chunk, which sums every column entry read from it: global = [w, h, images*c].
__kernel void conv_fold(__global const float* cols, __global float* x,
                        int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
                        int oh, int ow, int n0, int images) {
    int wi = get_global_id(0);
    int hi = get_global_id(1);
    int plane = get_global_id(2);
    if (wi >= w || hi >= h || plane >= images * c) return;
    int b = plane / c, ch = plane - b * c;
    int l = oh * ow;
    long rowLength = (long)images * l;
    x[(((long)n0 * c + plane) * h + hi) * w + wi] =
        fold_pixel(cols + (long)b * l, rowLength, ch, hi, wi, kh, kw, sh, sw, ph, pw, oh, ow);
}

// conv_fold for a CPU-like device: one work item per image plane of the chunk, which zeroes its plane and then
// adds every column entry of its channel in order (patch rows, then positions), with no integer division per
// element. Only this work item writes the plane, so nothing races. global = [c, images].
__kernel void conv_fold_planes(__global const float* cols, __global float* x,
                               int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
                               int oh, int ow, int n0, int images) {
    int ch = get_global_id(0);
    int b = get_global_id(1);
    if (ch >= c || b >= images) return;
    int l = oh * ow;
    long rowLength = (long)images * l;
    __global float* plane = x + ((long)(n0 + b) * c + ch) * h * w;
    for (int p = 0; p < h * w; p++) plane[p] = 0.0f;
    for (int i = 0; i < kh; i++) {
        for (int j = 0; j < kw; j++) {
            __global const float* in = cols + (long)((ch * kh + i) * kw + j) * rowLength + (long)b * l;
            int lo, hi;
            conv_valid_columns(ow, sw, pw, j, w, &lo, &hi);
            for (int y = 0; y < oh; y++) {
                int r = y * sh - ph + i;
                if (r < 0 || r >= h) continue;
                __global float* dst = plane + (long)r * w - pw + j;
                __global const float* src = in + y * ow;
                for (int xo = lo; xo < hi; xo++) dst[xo * sw] += src[xo];
            }
        }
    }
}

// chunk[o, b*L + p] = y[n0 + b, o, p]: global = [L, o, images].
__kernel void conv_gather_output(__global const float* y, __global float* chunk, int o, int l, int n0, int images) {
    int p = get_global_id(0);
    int oc = get_global_id(1);
    int b = get_global_id(2);
    if (p >= l || oc >= o || b >= images) return;
    chunk[((long)oc * images + b) * l + p] = y[((long)(n0 + b) * o + oc) * l + p];
}

// y[n0 + b, o, p] = chunk[o, b*L + p] (+ bias[o]): global = [L, o, images].
__kernel void conv_scatter_output(__global const float* chunk, __global float* y, __global const float* bias,
                                  int has_bias, int o, int l, int n0, int images) {
    int p = get_global_id(0);
    int oc = get_global_id(1);
    int b = get_global_id(2);
    if (p >= l || oc >= o || b >= images) return;
    float v = chunk[((long)oc * images + b) * l + p];
    if (has_bias) v += bias[oc];
    y[((long)(n0 + b) * o + oc) * l + p] = v;
}
