// The direct matrix product, C = act(alpha * op(A) * op(B) + beta * C + bias), row-major, batched over dimension 2,
// one work-item per output: for tiny products (one launch), row-poor and narrow ones on GPUs, and the edge strips
// of the register-block kernels of gemm.cl (launched with a global offset). A file of its own, so that a GPU
// builds it without the CPU-shaped kernels of gemm.cl. The epilogue (gemm_epilogue) is in common.cl.
// op(A)[i, p] = transA ? A[p * lda + i] : A[i * lda + p];  op(B)[p, j] = transB ? B[j * ldb + p] : B[p * ldb + j].

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

