#ifndef MYELIN_GEMM_H
#define MYELIN_GEMM_H
// A register-blocked SGEMM for the CPU device's small-M products (a batch of 128 rows through dense layers),
// where OpenBLAS's blocking and threading are sized for larger matrices. A 6×16 micro-kernel of AVX2 FMAs
// over packed panels of A (6 rows) and B (16 columns), blocked over K by 256, with the bias and ReLU applied
// as C is stored. Row-major. Compiled for AVX2+FMA by function attribute and chosen at run time:
// `myelin_sgemm_available()` says whether this CPU has them (otherwise the caller uses BLAS). Products of at
// most 512 multiply-adds skip the packing: one dot product per element of C.

#include <stddef.h>

/// 1 when the CPU has AVX2 and FMA (the kernel can run), else 0.
int myelin_sgemm_available(void);

/// One block of C = alpha·op(A)·op(B) + beta·C, for rows [row0, row1) and columns [col0, col1) of C only
/// (callers split C among threads by these ranges). op(A) is m×k: A stored [m, lda] (transA = 0) or [k, lda]
/// (transA = 1); op(B) is k×n: B stored [k, ldb] (transB = 0) or [n, ldb] (transB = 1). beta = 0 does not
/// read C. Then, when bias is not NULL, C[i][j] += bias[j]; then, when relu is 1, C[i][j] = C[i][j] > 0 ?
/// C[i][j] : 0. k must be at least 1. Packing buffers are per thread and kept between calls.
void myelin_sgemm_block(int transA, int transB, long k, float alpha,
                        const float *a, long lda, const float *b, long ldb,
                        float beta, float *c, long ldc, const float *bias, int relu,
                        long row0, long row1, long col0, long col1);
#endif
