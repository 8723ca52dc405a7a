// The SGEMMs of two libraries the CPU device may use for its larger products instead of OpenBLAS, both loaded at
// run time (dlopen), so that neither is needed to build or to run: oneDNN's `dnnl_sgemm` (libdnnl.so.2, the
// library myelin_dnnl.h loads for the convolutions) and BLIS's `cblas_sgemm` (libblis.so.4, Debian's libblis4
// with its per-CPU kernels, the OpenMP or pthreads build, whichever is installed).
#ifndef MYELIN_GEMM_LIBRARIES_H
#define MYELIN_GEMM_LIBRARIES_H

/// The libraries: 0 oneDNN, 1 BLIS.
enum { MYELIN_GEMM_DNNL = 0, MYELIN_GEMM_BLIS = 1 };

/// Loads `library` (once; later calls return the first answer) with `threads` threads. Returns 1 when its
/// SGEMM is usable, 0 when not (then `myelin_gemm_library_error` says why).
int myelin_gemm_library_load(int library, int threads);

/// Why loading `library` failed ("" when it did not or was not tried).
const char *myelin_gemm_library_error(int library);

/// C = alpha·op(A)·op(B) + beta·C, row-major (op(A) m×k, op(B) k×n; transA: A stored k×m), on `library`, which
/// must have loaded. k ≥ 1. Returns 0 on success, nonzero when the library refused (C untouched then).
int myelin_gemm_library_sgemm(int library, int transA, int transB, long m, long n, long k, float alpha,
                              const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc);
#endif
