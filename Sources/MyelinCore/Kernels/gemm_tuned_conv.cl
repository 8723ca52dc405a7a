// Convolution as implicit GEMMs on the GPU-grade tiles (GEMM_FRAG of gemm_tuned.cl, whose program this file joins):
// the forward, the weight gradient and the input gradient, each gathering its operands in the tile loads
// (conv_gather, modes 1 to 3), so no column matrix is written or read and nothing is recomputed. In the program
// without transposes only (the gathers replace the row-major loads).
#if defined(GEMM_FRAG)
#if !TRANS_A && !TRANS_B

// Writes this item's outputs of an M x N product whose column j = img * P + p is position p of image img into
// the NCHW array y[img, row, p] (+ bias[row] when has_bias).
inline void conv_frag_store_nchw(float acc[WM][WN], __global float* y, int M, int N, int P, int row0, int col0,
                                 int tx, int ty, __global const float* bias, int has_bias) {
    _Pragma("unroll") for (int r = 0; r < WM; ++r) {
        int o = FRAG_ROW(r);
        if (o >= M) continue;
        float b = has_bias ? bias[o] : 0.0f;
        _Pragma("unroll") for (int q = 0; q < WN; ++q) {
            int j = FRAG_COL(q / VW) + q % VW;
            if (j >= N) continue;
            int img = j / P;
            y[((long)img * M + o) * P + (j - img * P)] = acc[r][q] + b;
        }
    }
}

// The start of each kernel below: the local tiles, this item's place in the tile, the gather of `mode` (the
// kernel's geometry arguments) and its zeroed accumulators.
#define CONV_FRAG_SETUP(mode) \
    __local float As[TK * LDAS]; \
    __local float Bs[TK * LDBS]; \
    int tx = get_local_id(0), ty = get_local_id(1); \
    int col0 = get_group_id(0) * TN, row0 = get_group_id(1) * TM; \
    conv_gather g = {mode, O, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow}; \
    float acc[WM][WN]; \
    _Pragma("unroll") for (int r = 0; r < WM; ++r) _Pragma("unroll") for (int q = 0; q < WN; ++q) acc[r][q] = 0.0f;

// Forward: y[img, o, p] = Σ_k W[o, k] · cols[k, img * L + p] (+ bias[o]), the columns gathered from x in the
// B-tile loads. M = O, N = images * L, K = c * kh * kw; `aligned`: bit 0 when K is a multiple of VW.
// Global: [ceil(N / TN) * RTN, ceil(O / TM) * RTM, 1].
__kernel __attribute__((reqd_work_group_size(RTN, RTM, 1)))
void conv_frag_forward(int O, int N, int K, __global const float* W, __global const float* x, int aligned,
                       __global float* y, __global const float* bias, int has_bias,
                       int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    CONV_FRAG_SETUP(1)
    frag_accumulate(acc, As, Bs, O, N, 0, K, row0, col0, tx, ty, W, K, x, 0, aligned, g);
    conv_frag_store_nchw(acc, y, O, N, oh * ow, row0, col0, tx, ty, bias, has_bias);
}

// Weight gradient: gw[o, k] = Σ_r gy[img, o, p] · cols[k, r] over r = img * L + p, both operands gathered (mode
// 2). M = O, N = K = c * kh * kw, reduction R = images * L, cut into slices of sliceK: slice s (dimension 2) sums
// r in [s * sliceK, (s + 1) * sliceK) into out[s * O * K ..] (gemm_split_reduce adds the slices; with one slice
// out is gw itself). Global: [ceil(K / TN) * RTN, ceil(O / TM) * RTM, slices].
__kernel __attribute__((reqd_work_group_size(RTN, RTM, 1)))
void conv_frag_weight_grad(int O, int K, int R, int sliceK, __global const float* gy, __global const float* x,
                           __global float* out,
                           int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    CONV_FRAG_SETUP(2)
    int s = get_global_id(2);
    int k0 = min(s * sliceK, R), k1 = min(k0 + sliceK, R);
    frag_accumulate(acc, As, Bs, O, K, k0, k1, row0, col0, tx, ty, gy, 0, x, 0, 0, g);
    __global float* slice = out + (long)s * O * K;
    _Pragma("unroll") for (int r = 0; r < WM; ++r) {
        int o = FRAG_ROW(r);
        if (o >= O) continue;
        _Pragma("unroll") for (int q = 0; q < WN; ++q) {
            int j = FRAG_COL(q / VW) + q % VW;
            if (j < K) slice[(long)o * K + j] = acc[r][q];
        }
    }
}

// Input gradient: gx[img, ch, pixel] = Σ_r W[oc, ch, i, j] · gy[img, oc, y, xo] over r = (oc * kh + i) * kw + j
// and the output positions (y, xo) whose tap (i, j) reads the pixel (mode 3): each work-item gathers the sums
// of its own pixels, so no two write one value. M = c, N = images * h * w, K = O * kh * kw.
// Global: [ceil(N / TN) * RTN, ceil(c / TM) * RTM, 1].
__kernel __attribute__((reqd_work_group_size(RTN, RTM, 1)))
void conv_frag_input_grad(int O, int N, int K, __global const float* W, __global const float* gy, __global float* gx,
                          int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    CONV_FRAG_SETUP(3)
    frag_accumulate(acc, As, Bs, c, N, 0, K, row0, col0, tx, ty, W, 0, gy, 0, 0, g);
    conv_frag_store_nchw(acc, gx, c, N, h * w, row0, col0, tx, ty, 0, 0);
}
#endif
#endif
