// Matrix products C = act(alpha * op(A) * op(B) + beta * C + bias), row-major, batched over dimension 2.
// op(A)[i, p] = transA ? A[p * lda + i] : A[i * lda + p];  op(B)[p, j] = transB ? B[j * ldb + p] : B[p * ldb + j].
// The fixed kernels for CPU-type devices (PoCL) that the GEMM dispatch (OpenCL/OpenCLBackend+Gemm.swift) picks
// without a tuning table: register blocks 8 x 16, A·Bᵀ dot-product blocks 4 x 4, skinny (4 or 8 rows), and the
// packing kernel. The one-output-per-item kernel that every device uses (tiny products, edge strips) is in
// gemm_direct.cl, so that a GPU never builds this program; the parameterised kernels (K-blocked panels, GPU
// tiles, the K-split) are in gemm_tuned.cl. The epilogue (gemm_epilogue) is in common.cl.

// The epilogue on 8 consecutive outputs c[0..8) of one row, columns j..j+8: vector arithmetic, and
// the activation lane by lane unless it is the identity or a ReLU.
inline float8 gemm_epilogue8(float8 acc, float alpha, float beta, __global const float* c,
                             __global const float* bias, int has_bias, int j, int act, float act_p) {
    float8 v = alpha * acc;
    if (beta != 0.0f) v += beta * vload8(0, c);
    if (has_bias) v += vload8(0, bias + j);
    if (act == ACT_RELU) return fmax(v, (float8)(0.0f));
    if (act != 0) {
        float t[8];
        vstore8(v, 0, t);
        for (int e = 0; e < 8; ++e) t[e] = act_apply(act, t[e], act_p);
        v = vload8(0, t);
    }
    return v;
}

// Register-blocked kernels for CPU-like OpenCL devices (PoCL): each work-item computes an MR x (8*NV) block of C
// in float8 accumulators, streaming rows of B with vload8 and broadcasting elements of op(A). There are no
// barriers and no local memory, so PoCL runs each work-item's block as plain vector code (the work-group loop
// wraps the whole body). They cover only whole blocks: the host passes M and N rounded down to MR and 8*NV and
// computes the remaining strips with gemm_direct. TA: A is stored transposed (op(A)[i, p] = A[p * lda + i]);
// B must not be transposed (the host transposes it first).
#define GEMM_BLOCK_KERNEL(NAME, TA, MR, NV)                                                                      \
__kernel void NAME(int M, int N, int K, float alpha, float beta,                                                \
                   __global const float* A, int lda, long strideA, int transA,                                  \
                   __global const float* B, int ldb, long strideB, int transB,                                  \
                   __global float* C, int ldc, long strideC,                                                    \
                   __global const float* bias, int has_bias, int act, float act_p) {                            \
    int j0 = get_global_id(0) * (8 * NV);                                                                       \
    int i0 = get_global_id(1) * MR;                                                                             \
    int b = get_global_id(2);                                                                                   \
    if (i0 >= M || j0 >= N) return;                                                                             \
    A += b * strideA; B += b * strideB; C += b * strideC;                                                       \
    float8 acc[MR][NV];                                                                                         \
    _Pragma("unroll") for (int r = 0; r < MR; ++r)                                                              \
        _Pragma("unroll") for (int v = 0; v < NV; ++v) acc[r][v] = (float8)(0.0f);                              \
    __global const float* bp = B + j0;                                                                          \
    for (int p = 0; p < K; ++p, bp += ldb) {                                                                    \
        float8 bv[NV];                                                                                          \
        _Pragma("unroll") for (int v = 0; v < NV; ++v) bv[v] = vload8(v, bp);                                   \
        _Pragma("unroll") for (int r = 0; r < MR; ++r) {                                                        \
            float a = TA ? A[(long)p * lda + i0 + r] : A[(long)(i0 + r) * lda + p];                             \
            _Pragma("unroll") for (int v = 0; v < NV; ++v) acc[r][v] = fma((float8)(a), bv[v], acc[r][v]);      \
        }                                                                                                       \
    }                                                                                                           \
    _Pragma("unroll") for (int r = 0; r < MR; ++r) {                                                            \
        __global float* cr = C + (long)(i0 + r) * ldc + j0;                                                     \
        _Pragma("unroll") for (int v = 0; v < NV; ++v)                                                          \
            vstore8(gemm_epilogue8(acc[r][v], alpha, beta, cr + 8 * v, bias, has_bias, j0 + 8 * v, act, act_p), \
                    v, cr);                                                                                     \
    }                                                                                                           \
}

GEMM_BLOCK_KERNEL(gemm_block_nn_8x16, 0, 8, 2)
GEMM_BLOCK_KERNEL(gemm_block_tn_8x16, 1, 8, 2)

// A times B transposed (op(A)[i, p] = A[i * lda + p], op(B)[p, j] = B[j * ldb + p]): both operands are read along
// K, so each work-item keeps MR x NC float8 partial dot products and sums their lanes at the end; no transpose
// of B first. Whole blocks only (the host passes M, N rounded down and computes the strips with gemm_direct).
#define GEMM_NT_KERNEL(NAME, MR, NC)                                                                            \
__kernel void NAME(int M, int N, int K, float alpha, float beta,                                                \
                   __global const float* A, int lda, long strideA, int transA,                                  \
                   __global const float* B, int ldb, long strideB, int transB,                                  \
                   __global float* C, int ldc, long strideC,                                                    \
                   __global const float* bias, int has_bias, int act, float act_p) {                            \
    int j0 = get_global_id(0) * NC;                                                                             \
    int i0 = get_global_id(1) * MR;                                                                             \
    int b = get_global_id(2);                                                                                   \
    if (i0 >= M || j0 >= N) return;                                                                             \
    A += b * strideA + (long)i0 * lda; B += b * strideB + (long)j0 * ldb; C += b * strideC;                     \
    float8 acc[MR][NC];                                                                                         \
    _Pragma("unroll") for (int r = 0; r < MR; ++r)                                                              \
        _Pragma("unroll") for (int c = 0; c < NC; ++c) acc[r][c] = (float8)(0.0f);                              \
    int K8 = K & ~7;                                                                                            \
    for (int p = 0; p < K8; p += 8) {                                                                           \
        float8 av[MR];                                                                                          \
        _Pragma("unroll") for (int r = 0; r < MR; ++r) av[r] = vload8(0, A + (long)r * lda + p);                \
        _Pragma("unroll") for (int c = 0; c < NC; ++c) {                                                        \
            float8 bv = vload8(0, B + (long)c * ldb + p);                                                       \
            _Pragma("unroll") for (int r = 0; r < MR; ++r) acc[r][c] = fma(av[r], bv, acc[r][c]);               \
        }                                                                                                       \
    }                                                                                                           \
    _Pragma("unroll") for (int r = 0; r < MR; ++r) {                                                            \
        __global float* cr = C + (long)(i0 + r) * ldc + j0;                                                     \
        _Pragma("unroll") for (int c = 0; c < NC; ++c) {                                                        \
            float8 t8 = acc[r][c];                                                                              \
            float4 t4 = t8.lo + t8.hi;                                                                          \
            float2 t2 = t4.lo + t4.hi;                                                                          \
            float s = t2.x + t2.y;                                                                              \
            for (int p = K8; p < K; ++p) s += A[(long)r * lda + p] * B[(long)c * ldb + p];                      \
            cr[c] = gemm_epilogue(s, alpha, beta, cr + c, bias, has_bias, j0 + c, act, act_p);                  \
        }                                                                                                       \
    }                                                                                                           \
}

GEMM_NT_KERNEL(gemm_nt_4x4, 4, 4)

// Packing (the skinny kernel's transposed B below): panels of W consecutive rows of op(A) (or columns of op(B)),
// each stored depth-major (K x W, contiguous) and zero-padded past X, so the compute kernel reads both operands sequentially
// and needs no edge checks until the store. Element (x, p) of the operand is src[x * sx + p * sp].
// Global size: [K * W, number of panels, batch], with no work-group size (get_global_size(1) = panels).
__kernel void gemm_pack(__global const float* src, int sx, int sp, long stride, int X, int K, int W,
                        __global float* dst) {
    int e = get_global_id(0);
    int panel = get_global_id(1);
    int b = get_global_id(2);
    if (e >= K * W) return;
    int p = e / W, w = e - p * W;
    int x = panel * W + w;
    float v = x < X ? src[b * stride + (long)x * sx + (long)p * sp] : 0.0f;
    dst[((long)b * get_global_size(1) + panel) * K * W + e] = v;
}

// Products with at most 16 columns (a classifier's output layer, its backward): op(B) is read as rows of 16
// (a transposed B is packed first by gemm_pack into K x 16 zero-padded rows), so each work-item streams them as float16 and keeps MR rows of C in float16
// accumulators. Edge rows read a valid row of A and are not stored; columns past N are not stored.
#define GEMM_SKINNY_KERNEL(NAME, MR)                                                                            \
__kernel void NAME(int M, int N, int K, float alpha, float beta,                                                \
                   __global const float* A, int lda, long strideA, int transA,                                  \
                   __global const float* Bp, int ldbp, long strideBp,                                           \
                   __global float* C, int ldc, long strideC,                                                    \
                   __global const float* bias, int has_bias, int act, float act_p) {                            \
    int i0 = get_global_id(0) * MR;                                                                             \
    int b = get_global_id(1);                                                                                   \
    if (i0 >= M) return;                                                                                        \
    A += b * strideA; Bp += b * strideBp; C += b * strideC;                                                     \
    int rows[MR];                                                                                               \
    _Pragma("unroll") for (int r = 0; r < MR; ++r) rows[r] = min(i0 + r, M - 1);                                \
    float16 acc[MR];                                                                                            \
    _Pragma("unroll") for (int r = 0; r < MR; ++r) acc[r] = (float16)(0.0f);                                    \
    /* ldbp 16: Bp is packed. Else Bp is op(B) itself, rows of ldbp: read 16 wide where that stays */          \
    /* inside the batch's K x ldbp block (lanes past N are never stored), lane by lane in the last rows. */     \
    int pSafe = ldbp == 16 ? K : max(0, K - ((16 + ldbp - 1) / ldbp - 1));                                      \
    for (int p = pSafe; p < K; ++p) {                                                                           \
        float t[16];                                                                                            \
        for (int j = 0; j < 16; ++j) t[j] = j < N ? Bp[(long)p * ldbp + j] : 0.0f;                              \
        float16 bv = vload16(0, t);                                                                             \
        _Pragma("unroll") for (int r = 0; r < MR; ++r)                                                          \
            acc[r] = fma((float16)(transA ? A[(long)p * lda + rows[r]] : A[(long)rows[r] * lda + p]), bv, acc[r]); \
    }                                                                                                           \
    if (transA) {                                                                                               \
        for (int p = 0; p < pSafe; ++p) {                                                                       \
            float16 bv = vload16(0, Bp + (long)p * ldbp);                                                       \
            _Pragma("unroll") for (int r = 0; r < MR; ++r)                                                      \
                acc[r] = fma((float16)(A[(long)p * lda + rows[r]]), bv, acc[r]);                                \
        }                                                                                                       \
    } else {                                                                                                    \
        for (int p = 0; p < pSafe; ++p) {                                                                       \
            float16 bv = vload16(0, Bp + (long)p * ldbp);                                                       \
            _Pragma("unroll") for (int r = 0; r < MR; ++r)                                                      \
                acc[r] = fma((float16)(A[(long)rows[r] * lda + p]), bv, acc[r]);                                \
        }                                                                                                       \
    }                                                                                                           \
    _Pragma("unroll") for (int r = 0; r < MR; ++r) {                                                            \
        if (i0 + r >= M) break;                                                                                 \
        __global float* cr = C + (long)(i0 + r) * ldc;                                                          \
        float t[16];                                                                                            \
        vstore16(acc[r], 0, t);                                                                                 \
        for (int j = 0; j < N; ++j) cr[j] = gemm_epilogue(t[j], alpha, beta, cr + j, bias, has_bias, j, act, act_p); \
    }                                                                                                           \
}

GEMM_SKINNY_KERNEL(gemm_skinny_4, 4)
GEMM_SKINNY_KERNEL(gemm_skinny_8, 8)
