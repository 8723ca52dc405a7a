#ifndef MYELIN_CBLAS_SHIM_H
#define MYELIN_CBLAS_SHIM_H
#include <stddef.h>
#include <cblas.h>

// LAPACK through OpenBLAS, which carries it (Debian's libopenblas exports dsyevd_ and the other Fortran
// symbols), so no LAPACKE header or package is needed. These are the Fortran routines' own prototypes:
// every argument by pointer, 32-bit INTEGERs (OpenBLAS's LP64 build, `blasint` = int), column-major
// matrices, and one hidden length per CHARACTER argument at the end (gfortran's calling convention; a C
// translation of LAPACK ignores them).

/// Eigenvalues (ascending, into `w`) and, with jobz "V", orthonormal eigenvectors (the columns of `a`,
/// overwritten) of a real symmetric n×n matrix, by divide and conquer. `uplo` "U" or "L": the triangle of `a`
/// that is read. lwork = -1 / liwork = -1 is a workspace query (the sizes come back in work[0] and iwork[0]).
/// info = 0: success; < 0: argument -info is invalid; > 0: the algorithm failed to converge.
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t uplo_len);
#endif
