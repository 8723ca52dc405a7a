// Matrix products C = act(alpha * op(A) * op(B) + beta * C + bias), row-major, batched over dimension 2.
// op(A)[i, p] = transA ? A[p * lda + i] : A[i * lda + p];  op(B)[p, j] = transB ? B[j * ldb + p] : B[p * ldb + j].

inline float gemm_epilogue(float acc, float alpha, float beta, __global const float* c_old,
                           __global const float* bias, int has_bias, int j, int act, float act_p) {
    float v = alpha * acc;
    if (beta != 0.0f) v += beta * (*c_old);
    if (has_bias) v += bias[j];
    return act_apply(act, v, act_p);
}

// Direct kernel: one work-item per output, for small or skinny products.
__kernel void gemm_direct(int M, int N, int K, float alpha, float beta,
                          __global const float* A, int lda, long strideA, int transA,
                          __global const float* B, int ldb, long strideB, int transB,
                          __global float* C, int ldc, long strideC,
                          __global const float* bias, int has_bias, int act, float act_p) {
    int j = get_global_id(0);
    int i = get_global_id(1);
    int b = get_global_id(2);
    if (i >= M || j >= N) return;
    A += b * strideA; B += b * strideB; C += b * strideC;
    float acc = 0.0f;
    if (!transA && !transB) {
        for (int p = 0; p < K; ++p) acc += A[i * lda + p] * B[p * ldb + j];
    } else {
        for (int p = 0; p < K; ++p) {
            float a = transA ? A[p * lda + i] : A[i * lda + p];
            float bb = transB ? B[j * ldb + p] : B[p * ldb + j];
            acc += a * bb;
        }
    }
    __global float* c = C + (long)i * ldc + j;
    *c = gemm_epilogue(acc, alpha, beta, c, bias, has_bias, j, act, act_p);
}

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
