// GEMM variants that were measured and lost against the kernels of gemm.cl (see README, "GEMM"): the local-memory
// tiled kernel, register blocks of other sizes, packed panels, A·Bᵀ dot products, skinny with 8 rows. The tuned
// path never picks them; `MYELIN_GEMM_KERNEL` selects one (for re-measuring) and GemmTuningTests checks them all.
// This file comes after gemm.cl in the program (name order) and uses its helpers and macros.
// requires: gemm.cl

// Tiled kernel: a work-group of (TILE/WPT)^2 items computes a TILE x TILE block of C, each item WPT x WPT
// outputs held in registers; A and B tiles of TILE x KTILE go through local memory. Edges are zero-padded,
// so every M, N, K is correct.
#define TILE 32
#define WPT 4
#define RTS (TILE / WPT)
#define KTILE 16

__kernel __attribute__((reqd_work_group_size(RTS, RTS, 1)))
void gemm_tiled(int M, int N, int K, float alpha, float beta,
                __global const float* A, int lda, long strideA, int transA,
                __global const float* B, int ldb, long strideB, int transB,
                __global float* C, int ldc, long strideC,
                __global const float* bias, int has_bias, int act, float act_p) {
    __local float As[KTILE][TILE];
    __local float Bs[KTILE][TILE];
    int tx = get_local_id(0), ty = get_local_id(1);
    int col0 = get_group_id(0) * TILE;
    int row0 = get_group_id(1) * TILE;
    int b = get_global_id(2);
    A += b * strideA; B += b * strideB; C += b * strideC;
    float acc[WPT][WPT];
    for (int r = 0; r < WPT; ++r) for (int c = 0; c < WPT; ++c) acc[r][c] = 0.0f;
    int lid = ty * RTS + tx;
    for (int k0 = 0; k0 < K; k0 += KTILE) {
        // Each of the RTS*RTS = 64 items loads TILE*KTILE/64 = 8 elements of each tile.
        for (int l = lid; l < TILE * KTILE; l += RTS * RTS) {
            int kk = l / TILE, mm = l % TILE;
            int gi = row0 + mm, gk = k0 + kk;
            As[kk][mm] = (gi < M && gk < K) ? (transA ? A[(long)gk * lda + gi] : A[(long)gi * lda + gk]) : 0.0f;
            int gj = col0 + mm;
            Bs[kk][mm] = (gj < N && gk < K) ? (transB ? B[(long)gj * ldb + gk] : B[(long)gk * ldb + gj]) : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < KTILE; ++kk) {
            float bv[WPT];
            for (int c = 0; c < WPT; ++c) bv[c] = Bs[kk][tx + c * RTS];
            for (int r = 0; r < WPT; ++r) {
                float av = As[kk][ty + r * RTS];
                for (int c = 0; c < WPT; ++c) acc[r][c] += av * bv[c];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int r = 0; r < WPT; ++r) {
        int i = row0 + ty + r * RTS;
        if (i >= M) continue;
        for (int c = 0; c < WPT; ++c) {
            int j = col0 + tx + c * RTS;
            if (j >= N) continue;
            __global float* cp = C + (long)i * ldc + j;
            *cp = gemm_epilogue(acc[r][c], alpha, beta, cp, bias, has_bias, j, act, act_p);
        }
    }
}

// Register blocks of other sizes (GEMM_BLOCK_KERNEL in gemm.cl).
GEMM_BLOCK_KERNEL(gemm_block_nn_4x32, 0, 4, 4)
GEMM_BLOCK_KERNEL(gemm_block_tn_4x32, 1, 4, 4)
GEMM_BLOCK_KERNEL(gemm_block_nn_6x32, 0, 6, 4)
GEMM_BLOCK_KERNEL(gemm_block_tn_6x32, 1, 6, 4)
GEMM_BLOCK_KERNEL(gemm_block_nn_8x32, 0, 8, 4)
GEMM_BLOCK_KERNEL(gemm_block_tn_8x32, 1, 8, 4)
GEMM_BLOCK_KERNEL(gemm_block_nn_12x16, 0, 12, 2)
GEMM_BLOCK_KERNEL(gemm_block_nn_8x24, 0, 8, 3)
GEMM_BLOCK_KERNEL(gemm_block_tn_8x24, 1, 8, 3)
GEMM_BLOCK_KERNEL(gemm_block_tn_12x16, 1, 12, 2)

// Packed compute: work-item (column panel, row panel, batch) computes an MR x (8*NV) block of C from packed
// panels (see gemm_pack), MR * NV float8 accumulators in registers. The store checks the edges of C.
#define GEMM_PACKED_KERNEL(NAME, MR, NV, ROWS_FIRST)                                                            \
__kernel void NAME(int M, int N, int K, float alpha, float beta,                                                \
                   __global const float* Ap, long strideAp, __global const float* Bp, long strideBp,            \
                   __global float* C, int ldc, long strideC,                                                    \
                   __global const float* bias, int has_bias, int act, float act_p) {                            \
    int cb = ROWS_FIRST ? get_global_id(1) : get_global_id(0);                                                  \
    int rb = ROWS_FIRST ? get_global_id(0) : get_global_id(1);                                                  \
    int b = get_global_id(2);                                                                                   \
    int i0 = rb * MR, j0 = cb * (8 * NV);                                                                       \
    if (i0 >= M || j0 >= N) return;                                                                             \
    __global const float* ap = Ap + b * strideAp + (long)rb * K * MR;                                           \
    __global const float* bp = Bp + b * strideBp + (long)cb * K * (8 * NV);                                     \
    C += b * strideC;                                                                                           \
    float8 acc[MR][NV];                                                                                         \
    _Pragma("unroll") for (int r = 0; r < MR; ++r)                                                              \
        _Pragma("unroll") for (int v = 0; v < NV; ++v) acc[r][v] = (float8)(0.0f);                              \
    for (int p = 0; p < K; ++p, ap += MR, bp += 8 * NV) {                                                       \
        float8 bv[NV];                                                                                          \
        _Pragma("unroll") for (int v = 0; v < NV; ++v) bv[v] = vload8(v, bp);                                   \
        _Pragma("unroll") for (int r = 0; r < MR; ++r) {                                                        \
            float8 a = (float8)(ap[r]);                                                                         \
            _Pragma("unroll") for (int v = 0; v < NV; ++v) acc[r][v] = fma(a, bv[v], acc[r][v]);                \
        }                                                                                                       \
    }                                                                                                           \
    _Pragma("unroll") for (int r = 0; r < MR; ++r) {                                                            \
        if (i0 + r >= M) break;                                                                                 \
        __global float* cr = C + (long)(i0 + r) * ldc + j0;                                                     \
        _Pragma("unroll") for (int v = 0; v < NV; ++v) {                                                        \
            float t[8];                                                                                         \
            vstore8(acc[r][v], 0, t);                                                                           \
            for (int e = 0; e < 8; ++e) {                                                                       \
                int j = j0 + 8 * v + e;                                                                         \
                if (j < N) cr[8 * v + e] = gemm_epilogue(t[e], alpha, beta, cr + 8 * v + e, bias, has_bias,     \
                                                         j, act, act_p);                                        \
            }                                                                                                   \
        }                                                                                                       \
    }                                                                                                           \
}

GEMM_PACKED_KERNEL(gemm_packed_4x32, 4, 4, 0)
GEMM_PACKED_KERNEL(gemm_packed_6x32, 6, 4, 0)
GEMM_PACKED_KERNEL(gemm_packed_8x16, 8, 2, 0)
GEMM_PACKED_KERNEL(gemm_packed_8x32, 8, 4, 0)
GEMM_PACKED_KERNEL(gemm_packed_12x16, 12, 2, 0)
GEMM_PACKED_KERNEL(gemm_packed_8x24, 8, 3, 0)
GEMM_PACKED_KERNEL(gemm_packed_r_8x16, 8, 2, 1)
GEMM_PACKED_KERNEL(gemm_packed_r_8x32, 8, 4, 1)

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
GEMM_NT_KERNEL(gemm_nt_4x6, 4, 6)
GEMM_NT_KERNEL(gemm_nt_6x4, 6, 4)

// Skinny with 8 rows per work-item (GEMM_SKINNY_KERNEL in gemm.cl).
GEMM_SKINNY_KERNEL(gemm_skinny_8, 8)
