// Parameterised GEMM kernels, C = act(alpha * op(A) * op(B) + beta * C + bias), row-major, batched over
// dimension 2. Each variant is its own program: common.cl and this file, built with the -D defines of
// `GemmVariant.defines` (OpenCL/OpenCLBackend+Gemm.swift). In the main program none of them is defined and this file is
// empty. `myelin tune` measures the variants on a device; the tuning table or the device's defaults pick one
// per shape class.
//
// GEMM_PANEL (CPU-like devices): op(B) is packed into zero-padded panels of NR = 8 * NV columns, depth-major;
// op(A) is read in place (MR rows at a time, broadcast element by element: packing it cost PoCL more than the
// kernel gained). Each work-item computes MB x NB register blocks of MR x NR with the K loop cut into blocks of
// KC: for each K block it walks its NB column panels (the KC x NR slice of B stays in L1) and, for each, its MB
// row panels (the MB x MR x KC slice of A stays in L2), updating C after each block. No barriers, no local
// memory: PoCL runs each work-item as plain vector code.
//   Defines: MR (rows per register block), NV (float8 vectors per row of the block), KC (K block; 0: all of
//   K), MB (row panels per work-item), NB (column panels per work-item).
//
// GEMM_TILE (GPU-like devices): a work-group of (TN / WN) x (TM / WM) items computes a TM x TN tile of C, each
// item WM x WN outputs in registers (rows ty + r * (TM / WM), columns tx + c * (TN / WN)); tiles of A and B of
// depth TK go through local memory, loaded so that neighbouring items read neighbouring addresses. Edges are
// zero-padded, so every M, N, K and transpose is correct. The same program holds the K-split kernels
// (gemm_tile_split, gemm_split_reduce) for products with few tiles of C and a long K (the `deep` class).
//   Defines: TM, TN (tile of C), TK (depth of a local tile), WM, WN (outputs per item).
//
// GEMM_FRAG (GPU-grade tiles, the NVIDIA/AMD default): as GEMM_TILE, with contiguous vector fragments per item,
// vector global and local loads, unchecked interior tiles, compile-time transposes and register prefetch; see its
// section below. It shares gemm_split_reduce with GEMM_TILE.

#ifdef GEMM_PANEL
#define NR (8 * NV)

// Packs panels of W consecutive rows of op(A) (or columns of op(B)), element (x, p) = src[x * sx + p * sp],
// K block by K block (kc = KC, or K): block kb0 .. kb0 + len holds every panel's len x W slice, depth-major, so that
// the slices a work-item uses in one K block lie together (panels of the whole K, at power-of-two strides, took
// the same cache sets): dst[b * panels * K * W + kb0 * panels * W + panel * len * W + (p - kb0) * W + w] =
// x < X ? src[...] : 0 with x = panel * W + w. Global size: [panels, ceil(K / 64), batch]; each work-item copies
// 64 steps of one panel. Whole panels move as float8 vectors: rows of W along x (op(B) = B), or (A not
// transposed) 8 steps of each of the W rows transposed through private memory; the element-wise loop is left for
// edges (LLVM made scatters of it, slow on x86).
#define GEMM_PANEL_PACK(NAME, W)                                                                                \
__kernel void NAME(__global const float* src, int sx, int sp, long stride, int X, int K, int panels,            \
                   __global float* dst) {                                                                       \
    int panel = get_global_id(0);                                                                               \
    int p0 = get_global_id(1) * 64;                                                                             \
    int b = get_global_id(2);                                                                                   \
    if (panel >= panels || p0 >= K) return;                                                                     \
    int p1 = min(p0 + 64, K);                                                                                   \
    int x0 = panel * W;                                                                                         \
    int kc = KC > 0 ? KC : K;                                                                                   \
    src += b * stride;                                                                                          \
    dst += (long)b * panels * K * W;                                                                            \
    for (int p = p0; p < p1;) {                                                                                 \
        int kb0 = p / kc * kc, len = min(kc, K - kb0), pEnd = min(p1, kb0 + len);                               \
        /* Element (x, p) of this K block at d[p * W + w]. */                                                   \
        __global float* d = dst + (long)kb0 * panels * W + (long)panel * len * W - (long)kb0 * W;               \
        if (x0 + W <= X && sx == 1 && W % 8 == 0) {                                                             \
            for (; p < pEnd; ++p) {                                                                             \
                __global const float* s = src + (long)p * sp + x0;                                              \
                _Pragma("unroll") for (int v = 0; v < W / 8; ++v) vstore8(vload8(v, s), v, d + (long)p * W);   \
            }                                                                                                   \
        } else if (x0 + W <= X && sp == 1) {                                                                    \
            for (; p + 8 <= pEnd; p += 8) {                                                                     \
                float t[8 * W];                                                                                 \
                _Pragma("unroll") for (int w = 0; w < W; ++w) {                                                 \
                    float8 v = vload8(0, src + (long)(x0 + w) * sx + p);                                        \
                    t[w] = v.s0; t[W + w] = v.s1; t[2 * W + w] = v.s2; t[3 * W + w] = v.s3;                     \
                    t[4 * W + w] = v.s4; t[5 * W + w] = v.s5; t[6 * W + w] = v.s6; t[7 * W + w] = v.s7;         \
                }                                                                                               \
                _Pragma("unroll") for (int e = 0; e < W; ++e) vstore8(vload8(e, t), e, d + (long)p * W);       \
            }                                                                                                   \
        }                                                                                                       \
        for (; p < pEnd; ++p)                                                                                   \
            for (int w = 0; w < W; ++w) {                                                                       \
                int x = x0 + w;                                                                                 \
                d[(long)p * W + w] = x < X ? src[(long)x * sx + (long)p * sp] : 0.0f;                           \
            }                                                                                                   \
    }                                                                                                           \
}

GEMM_PANEL_PACK(gemm_panel_pack_a, MR)
GEMM_PANEL_PACK(gemm_panel_pack_b, NR)

// Writes one MR x NR register block at rows i0.., columns j0.. . `first`: the first K block (reads beta * C);
// later blocks add to the partial sums already in C. `last`: the last K block (adds the bias, applies the
// activation). Rows past M and columns past N are not written.
inline void panel_store(float8 acc[MR][NV], int i0, int j0, int M, int N, __global float* C, int ldc,
                        float alpha, float beta, __global const float* bias, int has_bias, int act, float act_p,
                        int first, int last) {
    _Pragma("unroll") for (int r = 0; r < MR; ++r) {
        if (i0 + r >= M) break;
        __global float* cr = C + (long)(i0 + r) * ldc + j0;
        if (j0 + NR <= N) {
            _Pragma("unroll") for (int v = 0; v < NV; ++v) {
                float8 x = alpha * acc[r][v];
                if (!first) x += vload8(v, cr);
                else if (beta != 0.0f) x += beta * vload8(v, cr);
                if (last) {
                    if (has_bias) x += vload8(0, bias + j0 + 8 * v);
                    if (act == ACT_RELU) x = fmax(x, (float8)(0.0f));
                    else if (act != 0) {
                        float t[8];
                        vstore8(x, 0, t);
                        for (int e = 0; e < 8; ++e) t[e] = act_apply(act, t[e], act_p);
                        x = vload8(0, t);
                    }
                }
                vstore8(x, v, cr);
            }
        } else {
            _Pragma("unroll") for (int v = 0; v < NV; ++v) {
                float t[8];
                vstore8(acc[r][v], 0, t);
                for (int e = 0; e < 8; ++e) {
                    int j = j0 + 8 * v + e;
                    if (j >= N) break;
                    float x = alpha * t[e];
                    if (!first) x += cr[8 * v + e];
                    else if (beta != 0.0f) x += beta * cr[8 * v + e];
                    if (last) {
                        if (has_bias) x += bias[j];
                        x = act_apply(act, x, act_p);
                    }
                    cr[8 * v + e] = x;
                }
            }
        }
    }
}

// Work-item (x, y, b) covers column panels x * NB .. and row panels y * MB .. of batch b; Bp is packed by
// gemm_panel_pack_b. op(A) is read in place (packedA 0: element (i, p) is A[i * sRow + p * sStep], that is sRow,
// sStep = lda, 1, or 1, lda when transposed) or packed by gemm_panel_pack_a (packedA 1). Rows past M read row
// M - 1 and are not stored.
__kernel void gemm_panel(int M, int N, int K, float alpha, float beta,
                         __global const float* A, long sRow, long sStep, int packedA, long strideA,
                         __global const float* Bp, long strideBp,
                         __global float* C, int ldc, long strideC,
                         __global const float* bias, int has_bias, int act, float act_p) {
    int cp0 = get_global_id(0) * NB;
    int rp0 = get_global_id(1) * MB;
    int b = get_global_id(2);
    int colPanels = (N + NR - 1) / NR, rowPanels = (M + MR - 1) / MR;
    if (cp0 >= colPanels || rp0 >= rowPanels) return;
    int cp1 = min(cp0 + NB, colPanels), rp1 = min(rp0 + MB, rowPanels);
    A += b * strideA; Bp += b * strideBp; C += b * strideC;
    int kc = KC > 0 ? KC : K;
    for (int k0 = 0; k0 < K; k0 += kc) {
        int k1 = min(k0 + kc, K), len = k1 - k0;
        // This K block's slices: packed, every panel's len x MR (len x NR) slice in turn.
        __global const float* ab = packedA ? A + (long)k0 * rowPanels * MR : A + k0 * sStep;
        long sPanel = packedA ? (long)len * MR : MR * sRow;
        for (int cp = cp0; cp < cp1; ++cp) {
            for (int rp = rp0; rp < rp1; ++rp) {
                long row[MR];
                _Pragma("unroll") for (int r = 0; r < MR; ++r) {
                    int i = min(rp * MR + r, M - 1);
                    row[r] = (i / MR) * sPanel + (i % MR) * sRow;
                }
                __global const float* ap = ab;
                __global const float* bp = Bp + (long)k0 * colPanels * NR + (long)cp * len * NR;
                float8 acc[MR][NV];
                _Pragma("unroll") for (int r = 0; r < MR; ++r)
                    _Pragma("unroll") for (int v = 0; v < NV; ++v) acc[r][v] = (float8)(0.0f);
                for (int p = k0; p < k1; ++p, ap += sStep, bp += NR) {
                    float8 bv[NV];
                    _Pragma("unroll") for (int v = 0; v < NV; ++v) bv[v] = vload8(v, bp);
                    _Pragma("unroll") for (int r = 0; r < MR; ++r) {
                        float8 a = (float8)(ap[row[r]]);
                        _Pragma("unroll") for (int v = 0; v < NV; ++v) acc[r][v] = fma(a, bv[v], acc[r][v]);
                    }
                }
                panel_store(acc, rp * MR, cp * NR, M, N, C, ldc, alpha, beta, bias, has_bias, act, act_p,
                            k0 == 0, k1 == K);
            }
        }
    }
}
#endif

#ifdef GEMM_TILE
#define RTM (TM / WM)
#define RTN (TN / WN)
#define THREADS (RTM * RTN)

// acc += op(A)[row0 .. row0 + TM, k0 .. k1) · op(B)[k0 .. k1, col0 .. col0 + TN) for this item's WM x WN outputs,
// through the work-group's local tiles As, Bs (rows past M, columns past N and steps past k1 read as zeros).
inline void tile_accumulate(float acc[WM][WN], __local float As[TK][TM + 1], __local float Bs[TK][TN + 1],
                            int M, int N, int k0, int k1, int row0, int col0, int tx, int ty,
                            __global const float* A, int lda, int transA,
                            __global const float* B, int ldb, int transB) {
    int lid = ty * RTN + tx;
    for (int kt = k0; kt < k1; kt += TK) {
        // Neighbouring items read neighbouring addresses: along K for a row-major A, along M for a transposed one.
        for (int l = lid; l < TM * TK; l += THREADS) {
            int kk = transA ? l / TM : l % TK;
            int mm = transA ? l % TM : l / TK;
            int gi = row0 + mm, gk = kt + kk;
            As[kk][mm] = (gi < M && gk < k1) ? (transA ? A[(long)gk * lda + gi] : A[(long)gi * lda + gk]) : 0.0f;
        }
        for (int l = lid; l < TN * TK; l += THREADS) {
            int kk = transB ? l % TK : l / TN;
            int nn = transB ? l / TK : l % TN;
            int gj = col0 + nn, gk = kt + kk;
            Bs[kk][nn] = (gj < N && gk < k1) ? (transB ? B[(long)gj * ldb + gk] : B[(long)gk * ldb + gj]) : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < TK; ++kk) {
            float bv[WN];
            for (int c = 0; c < WN; ++c) bv[c] = Bs[kk][tx + c * RTN];
            for (int r = 0; r < WM; ++r) {
                float av = As[kk][ty + r * RTM];
                for (int c = 0; c < WN; ++c) acc[r][c] = fma(av, bv[c], acc[r][c]);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

__kernel __attribute__((reqd_work_group_size(RTN, RTM, 1)))
void gemm_tile(int M, int N, int K, float alpha, float beta,
               __global const float* A, int lda, long strideA, int transA,
               __global const float* B, int ldb, long strideB, int transB,
               __global float* C, int ldc, long strideC,
               __global const float* bias, int has_bias, int act, float act_p) {
    __local float As[TK][TM + 1];
    __local float Bs[TK][TN + 1];
    int tx = get_local_id(0), ty = get_local_id(1);
    int col0 = get_group_id(0) * TN;
    int row0 = get_group_id(1) * TM;
    int b = get_global_id(2);
    A += b * strideA; B += b * strideB; C += b * strideC;
    float acc[WM][WN];
    for (int r = 0; r < WM; ++r) for (int c = 0; c < WN; ++c) acc[r][c] = 0.0f;
    tile_accumulate(acc, As, Bs, M, N, 0, K, row0, col0, tx, ty, A, lda, transA, B, ldb, transB);
    for (int r = 0; r < WM; ++r) {
        int i = row0 + ty + r * RTM;
        if (i >= M) continue;
        for (int c = 0; c < WN; ++c) {
            int j = col0 + tx + c * RTN;
            if (j >= N) continue;
            __global float* cp = C + (long)i * ldc + j;
            *cp = gemm_epilogue(acc[r][c], alpha, beta, cp, bias, has_bias, j, act, act_p);
        }
    }
}

// K-split (small M x N, long K): dimension 2 runs over batch x slices; slice s of batch b sums K steps
// s * sliceK .. min((s + 1) * sliceK, K) of its tile into its own M x N partial product
// W[(b * slices + s) * M * N ..], with no epilogue. gemm_split_reduce then adds the slices in order and applies
// alpha, beta * C, the bias and the activation: no atomics, the same result on every run.
__kernel __attribute__((reqd_work_group_size(RTN, RTM, 1)))
void gemm_tile_split(int M, int N, int K, int slices, int sliceK,
                     __global const float* A, int lda, long strideA, int transA,
                     __global const float* B, int ldb, long strideB, int transB,
                     __global float* W) {
    __local float As[TK][TM + 1];
    __local float Bs[TK][TN + 1];
    int tx = get_local_id(0), ty = get_local_id(1);
    int col0 = get_group_id(0) * TN;
    int row0 = get_group_id(1) * TM;
    int z = get_global_id(2);
    int b = z / slices, s = z % slices;
    A += b * strideA; B += b * strideB;
    int k0 = min(s * sliceK, K), k1 = min(k0 + sliceK, K);
    float acc[WM][WN];
    for (int r = 0; r < WM; ++r) for (int c = 0; c < WN; ++c) acc[r][c] = 0.0f;
    tile_accumulate(acc, As, Bs, M, N, k0, k1, row0, col0, tx, ty, A, lda, transA, B, ldb, transB);
    __global float* w = W + (long)z * M * N;
    for (int r = 0; r < WM; ++r) {
        int i = row0 + ty + r * RTM;
        if (i >= M) continue;
        for (int c = 0; c < WN; ++c) {
            int j = col0 + tx + c * RTN;
            if (j < N) w[(long)i * N + j] = acc[r][c];
        }
    }
}

#endif

#if defined(GEMM_TILE) || defined(GEMM_FRAG)
// C[b, i, j] = act(alpha * (W[b, 0, i, j] + W[b, 1, i, j] + ...) + beta * C[b, i, j] + bias[j]), the slices
// added in order. Global size: [N, M, batch].
__kernel void gemm_split_reduce(int M, int N, int slices, float alpha, float beta, __global const float* W,
                                __global float* C, int ldc, long strideC,
                                __global const float* bias, int has_bias, int act, float act_p) {
    int j = get_global_id(0), i = get_global_id(1), b = get_global_id(2);
    if (i >= M || j >= N) return;
    long mn = (long)M * N;
    __global const float* w = W + (long)b * slices * mn + (long)i * N + j;
    float sum = 0.0f;
    for (int s = 0; s < slices; ++s) sum += w[s * mn];
    __global float* cp = C + b * strideC + (long)i * ldc + j;
    *cp = gemm_epilogue(sum, alpha, beta, cp, bias, has_bias, j, act, act_p);
}
#endif

#ifdef GEMM_FRAG
// GEMM_FRAG (GPU-grade tiles): a work-group of (TN / WN) x (TM / WM) items computes a TM x TN tile of C; each item
// holds WM x WN outputs in registers as (WM / VW) x (WN / VW) contiguous fragments of VW x VW (rows
// f * (TM / FM) + ty * VW .., columns g * (TN / FN) + tx * VW ..), read from k-major local tiles with VW-wide local
// loads: per step of K, FM + FN vector loads feed WM * WN multiply-adds. The global loads are VW wide (aligned
// vector loads when the host says the operand allows them, else vloadn), with no bounds checks on tiles inside M,
// N and K and a separate checked path on the edges. The transposes are compile-time (TRANS_A, TRANS_B: one
// program each). PREFETCH 1 loads the next K tile into registers before the multiply-adds on the current one.
//   Defines: TM, TN, TK, WM, WN, VW (1, 2 or 4), PREFETCH (0 or 1), TRANS_A, TRANS_B (0 or 1).
#define RTM (TM / WM)
#define RTN (TN / WN)
#define THREADS (RTM * RTN)
#define FM (WM / VW)
#define FN (WN / VW)
#define A_LOADS (TM * TK / VW / THREADS)
#define B_LOADS (TN * TK / VW / THREADS)
#define LDAS (TM + VW)
#define LDBS (TN + VW)

#if VW == 4
typedef float4 floatv;
#define VLOAD(p) vload4(0, p)
#define VSTORE(x, p) vstore4(x, 0, p)
#elif VW == 2
typedef float2 floatv;
#define VLOAD(p) vload2(0, p)
#define VSTORE(x, p) vstore2(x, 0, p)
#else
typedef float floatv;
#define VLOAD(p) (*(p))
#define VSTORE(x, p) (*(p) = (x))
#endif
// A global vector load: one aligned load where `aligned` (the leading dimension and batch stride are multiples of VW;
// buffers start aligned), else vloadn.
#define GLOAD(p, aligned) ((aligned) ? *(__global const floatv*)(p) : VLOAD(p))

// The implicit operands of the convolution kernels (Kernels/gemm_tuned_conv.cl), read in place of op(A) and op(B)
// by `mode`, with L = oh * ow and cols the column matrix of x: cols[(ch * kh + i) * kw + j, img * L + y * ow + xo]
// = x[img, ch, y * sh - ph + i, xo * sw - pw + j], 0 outside the image.
//   0: none (plain GEMM operands);
//   1 (forward):         B(k, col) = cols[k, col];
//   2 (weight gradient): A(oc, r) = gy[img, oc, p] for r = img * L + p, and B(r, k) = cols[k, r];
//   3 (input gradient):  A(ch, r) = W[oc, ch, i, j] for r = (oc * kh + i) * kw + j, and B(r, img * h * w + hi * w
//                        + wi) = gy[img, oc, y, xo] where hi = y * sh - ph + i and wi = xo * sw - pw + j, else 0
//                        (the pixel's gather over the output positions and taps that read it: no atomics).
typedef struct { int mode, o, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow; } conv_gather;

inline float conv_cols_at(__global const float* x, conv_gather g, int k, int col) {
    int khw = g.kh * g.kw, l = g.oh * g.ow;
    int ch = k / khw, r = k - ch * khw, i = r / g.kw, j = r - i * g.kw;
    int img = col / l, p = col - img * l, y = p / g.ow, xo = p - y * g.ow;
    int hi = y * g.sh - g.ph + i, wi = xo * g.sw - g.pw + j;
    return (hi >= 0 && hi < g.h && wi >= 0 && wi < g.w) ? x[(((long)img * g.c + ch) * g.h + hi) * g.w + wi] : 0.0f;
}

inline float conv_a_at(__global const float* A, conv_gather g, int row, int k) {
    if (g.mode == 2) {
        int l = g.oh * g.ow, img = k / l;
        return A[((long)img * g.o + row) * l + (k - img * l)];
    }
    int khw = g.kh * g.kw, oc = k / khw;
    return A[((long)oc * g.c + row) * khw + (k - oc * khw)];
}

inline float conv_b_at(__global const float* B, conv_gather g, int k, int col) {
    if (g.mode == 1) return conv_cols_at(B, g, k, col);
    if (g.mode == 2) return conv_cols_at(B, g, col, k);
    int khw = g.kh * g.kw, hw = g.h * g.w;
    int oc = k / khw, r = k - oc * khw, i = r / g.kw, j = r - i * g.kw;
    int img = col / hw, p = col - img * hw, hi = p / g.w, wi = p - hi * g.w;
    int ys = hi + g.ph - i, xs = wi + g.pw - j;
    if (ys < 0 || xs < 0 || ys % g.sh != 0 || xs % g.sw != 0) return 0.0f;
    int y = ys / g.sh, xo = xs / g.sw;
    return (y < g.oh && xo < g.ow) ? B[(((long)img * g.o + oc) * g.oh + y) * g.ow + xo] : 0.0f;
}

// Loads this item's share of the TM x TK tile of op(A) at rows row0.., steps kt.. into registers. Vector l runs
// along A's contiguous dimension: K for a row-major A, M for a transposed one.
inline void frag_load_a(floatv r[A_LOADS], __global const float* A, int lda, int M, int row0, int kt, int k1,
                        int lid, int aligned, conv_gather g) {
    int full = row0 + TM <= M && kt + TK <= k1;
    _Pragma("unroll") for (int i = 0; i < A_LOADS; ++i) {
        int l = lid + i * THREADS;
#if TRANS_A
        int kk = l / (TM / VW), mm = (l % (TM / VW)) * VW;
        __global const float* p = A + (long)(kt + kk) * lda + row0 + mm;
        if (full) { r[i] = GLOAD(p, aligned); continue; }
        float t[VW];
        _Pragma("unroll") for (int e = 0; e < VW; ++e) t[e] = (kt + kk < k1 && row0 + mm + e < M) ? p[e] : 0.0f;
#else
        int mm = l / (TK / VW), kk = (l % (TK / VW)) * VW;
        __global const float* p = A + (long)(row0 + mm) * lda + kt + kk;
        float t[VW];
        if (g.mode >= 2) {
            _Pragma("unroll") for (int e = 0; e < VW; ++e)
                t[e] = (row0 + mm < M && kt + kk + e < k1) ? conv_a_at(A, g, row0 + mm, kt + kk + e) : 0.0f;
            r[i] = VLOAD(t);
            continue;
        }
        if (full) { r[i] = GLOAD(p, aligned); continue; }
        _Pragma("unroll") for (int e = 0; e < VW; ++e) t[e] = (row0 + mm < M && kt + kk + e < k1) ? p[e] : 0.0f;
#endif
        r[i] = VLOAD(t);
    }
}

// The same for the TK x TN tile of op(B) at steps kt.., columns col0.. (contiguous along N for a row-major B, along
// K for a transposed one).
inline void frag_load_b(floatv r[B_LOADS], __global const float* B, int ldb, int N, int col0, int kt, int k1,
                        int lid, int aligned, conv_gather g) {
    int full = col0 + TN <= N && kt + TK <= k1;
    _Pragma("unroll") for (int i = 0; i < B_LOADS; ++i) {
        int l = lid + i * THREADS;
#if TRANS_B
        int nn = l / (TK / VW), kk = (l % (TK / VW)) * VW;
        __global const float* p = B + (long)(col0 + nn) * ldb + kt + kk;
        if (full) { r[i] = GLOAD(p, aligned); continue; }
        float t[VW];
        _Pragma("unroll") for (int e = 0; e < VW; ++e) t[e] = (col0 + nn < N && kt + kk + e < k1) ? p[e] : 0.0f;
#else
        int kk = l / (TN / VW), nn = (l % (TN / VW)) * VW;
        __global const float* p = B + (long)(kt + kk) * ldb + col0 + nn;
        float t[VW];
        if (g.mode) {
            _Pragma("unroll") for (int e = 0; e < VW; ++e)
                t[e] = (kt + kk < k1 && col0 + nn + e < N) ? conv_b_at(B, g, kt + kk, col0 + nn + e) : 0.0f;
            r[i] = VLOAD(t);
            continue;
        }
        if (full) { r[i] = GLOAD(p, aligned); continue; }
        _Pragma("unroll") for (int e = 0; e < VW; ++e) t[e] = (kt + kk < k1 && col0 + nn + e < N) ? p[e] : 0.0f;
#endif
        r[i] = VLOAD(t);
    }
}

// Writes the registers of frag_load_a / frag_load_b into the k-major local tiles As[k * LDAS + m], Bs[k * LDBS + n]
// (one vector store where the vector runs along M or N, VW scalar stores where it runs along K).
inline void frag_store(__local float* As, __local float* Bs, floatv ra[A_LOADS], floatv rb[B_LOADS], int lid) {
    _Pragma("unroll") for (int i = 0; i < A_LOADS; ++i) {
        int l = lid + i * THREADS;
#if TRANS_A
        VSTORE(ra[i], As + (l / (TM / VW)) * LDAS + (l % (TM / VW)) * VW);
#else
        float t[VW];
        VSTORE(ra[i], t);
        int mm = l / (TK / VW), kk = (l % (TK / VW)) * VW;
        _Pragma("unroll") for (int e = 0; e < VW; ++e) As[(kk + e) * LDAS + mm] = t[e];
#endif
    }
    _Pragma("unroll") for (int i = 0; i < B_LOADS; ++i) {
        int l = lid + i * THREADS;
#if TRANS_B
        float t[VW];
        VSTORE(rb[i], t);
        int nn = l / (TK / VW), kk = (l % (TK / VW)) * VW;
        _Pragma("unroll") for (int e = 0; e < VW; ++e) Bs[(kk + e) * LDBS + nn] = t[e];
#else
        VSTORE(rb[i], Bs + (l / (TN / VW)) * LDBS + (l % (TN / VW)) * VW);
#endif
    }
}

// acc += op(A)[row0 .., k0 .. k1) · op(B)[k0 .. k1, col0 ..) for this item's fragments. `aligned`: bit 0 for A,
// bit 1 for B (see GLOAD).
inline void frag_accumulate(float acc[WM][WN], __local float* As, __local float* Bs, int M, int N, int k0, int k1,
                            int row0, int col0, int tx, int ty, __global const float* A, int lda,
                            __global const float* B, int ldb, int aligned, conv_gather g) {
    int lid = ty * RTN + tx;
    floatv ra[A_LOADS], rb[B_LOADS];
    frag_load_a(ra, A, lda, M, row0, k0, k1, lid, aligned & 1, g);
    frag_load_b(rb, B, ldb, N, col0, k0, k1, lid, aligned & 2, g);
    for (int kt = k0; kt < k1; kt += TK) {
        frag_store(As, Bs, ra, rb, lid);
        barrier(CLK_LOCAL_MEM_FENCE);
#if PREFETCH
        // The next tile's global loads are in flight during the multiply-adds on this one.
        if (kt + TK < k1) {
            frag_load_a(ra, A, lda, M, row0, kt + TK, k1, lid, aligned & 1, g);
            frag_load_b(rb, B, ldb, N, col0, kt + TK, k1, lid, aligned & 2, g);
        }
#endif
        _Pragma("unroll") for (int kk = 0; kk < TK; ++kk) {
            float a[WM], b[WN];
            _Pragma("unroll") for (int f = 0; f < FM; ++f) VSTORE(VLOAD(As + kk * LDAS + f * (RTM * VW) + ty * VW), a + f * VW);
            _Pragma("unroll") for (int g = 0; g < FN; ++g) VSTORE(VLOAD(Bs + kk * LDBS + g * (RTN * VW) + tx * VW), b + g * VW);
            _Pragma("unroll") for (int r = 0; r < WM; ++r)
                _Pragma("unroll") for (int c = 0; c < WN; ++c) acc[r][c] = fma(a[r], b[c], acc[r][c]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
#if !PREFETCH
        if (kt + TK < k1) {
            frag_load_a(ra, A, lda, M, row0, kt + TK, k1, lid, aligned & 1, g);
            frag_load_b(rb, B, ldb, N, col0, kt + TK, k1, lid, aligned & 2, g);
        }
#endif
    }
}

// The row of C of this item's output row r, and the first column of its fragment g.
#define FRAG_ROW(r) (row0 + ((r) / VW) * (RTM * VW) + ty * VW + (r) % VW)
#define FRAG_COL(g) (col0 + (g) * (RTN * VW) + tx * VW)

__kernel __attribute__((reqd_work_group_size(RTN, RTM, 1)))
void gemm_frag(int M, int N, int K, float alpha, float beta,
               __global const float* A, int lda, long strideA, __global const float* B, int ldb, long strideB,
               int aligned, __global float* C, int ldc, long strideC,
               __global const float* bias, int has_bias, int act, float act_p) {
    __local float As[TK * LDAS];
    __local float Bs[TK * LDBS];
    int tx = get_local_id(0), ty = get_local_id(1);
    int col0 = get_group_id(0) * TN, row0 = get_group_id(1) * TM;
    int b = get_global_id(2);
    A += b * strideA; B += b * strideB; C += b * strideC;
    float acc[WM][WN];
    _Pragma("unroll") for (int r = 0; r < WM; ++r) _Pragma("unroll") for (int c = 0; c < WN; ++c) acc[r][c] = 0.0f;
    conv_gather none = {0};
    frag_accumulate(acc, As, Bs, M, N, 0, K, row0, col0, tx, ty, A, lda, B, ldb, aligned, none);
    _Pragma("unroll") for (int r = 0; r < WM; ++r) {
        int i = FRAG_ROW(r);
        if (i >= M) continue;
        _Pragma("unroll") for (int g = 0; g < FN; ++g) {
            int j0 = FRAG_COL(g);
            __global float* cp = C + (long)i * ldc + j0;
            float t[VW];
            if (j0 + VW <= N) {
                _Pragma("unroll") for (int e = 0; e < VW; ++e)
                    t[e] = gemm_epilogue(acc[r][g * VW + e], alpha, beta, cp + e, bias, has_bias, j0 + e, act, act_p);
                VSTORE(VLOAD(t), cp);
            } else {
                for (int e = 0; e < VW && j0 + e < N; ++e)
                    cp[e] = gemm_epilogue(acc[r][g * VW + e], alpha, beta, cp + e, bias, has_bias, j0 + e, act, act_p);
            }
        }
    }
}

// K-split, as gemm_tile_split: slice s of batch b (dimension 2 = b * slices + s) writes its partial product of
// K steps s * sliceK .. into W[(b * slices + s) * M * N ..]; gemm_split_reduce adds the slices.
__kernel __attribute__((reqd_work_group_size(RTN, RTM, 1)))
void gemm_frag_split(int M, int N, int K, int slices, int sliceK,
                     __global const float* A, int lda, long strideA, __global const float* B, int ldb, long strideB,
                     int aligned, __global float* W) {
    __local float As[TK * LDAS];
    __local float Bs[TK * LDBS];
    int tx = get_local_id(0), ty = get_local_id(1);
    int col0 = get_group_id(0) * TN, row0 = get_group_id(1) * TM;
    int z = get_global_id(2);
    int b = z / slices, s = z % slices;
    A += b * strideA; B += b * strideB;
    int k0 = min(s * sliceK, K), k1 = min(k0 + sliceK, K);
    float acc[WM][WN];
    _Pragma("unroll") for (int r = 0; r < WM; ++r) _Pragma("unroll") for (int c = 0; c < WN; ++c) acc[r][c] = 0.0f;
    conv_gather none = {0};
    frag_accumulate(acc, As, Bs, M, N, k0, k1, row0, col0, tx, ty, A, lda, B, ldb, aligned, none);
    __global float* w = W + (long)z * M * N;
    _Pragma("unroll") for (int r = 0; r < WM; ++r) {
        int i = FRAG_ROW(r);
        if (i >= M) continue;
        _Pragma("unroll") for (int c = 0; c < WN; ++c) {
            int j = FRAG_COL(c / VW) + c % VW;
            if (j < N) w[(long)i * N + j] = acc[r][c];
        }
    }
}

#endif
