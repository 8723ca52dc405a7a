// See include/myelin_gemm_libraries.h.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <oneapi/dnnl/dnnl.h>
#include "myelin_dnnl.h"
#include "myelin_gemm_libraries.h"

/// BLIS's CBLAS entry (the CBLAS enums as ints: 101 row-major, 111 no transpose, 112 transpose).
typedef void cblas_sgemm_f(int order, int transA, int transB, int m, int n, int k, float alpha, const float *a,
                           int lda, const float *b, int ldb, float beta, float *c, int ldc);
typedef void bli_thread_set_num_threads_f(long threads);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int loaded[2] = {-1, -1};   // -1 not tried, 0 failed, 1 usable
static char errors[2][256];
static __typeof__(dnnl_sgemm) *p_dnnl_sgemm;
static cblas_sgemm_f *p_blis_sgemm;

/// oneDNN: through myelin_dnnl_load (which sets its OpenMP threads), then the already loaded library's dnnl_sgemm.
static int load_dnnl(int threads) {
    if (!myelin_dnnl_load(threads)) {
        snprintf(errors[MYELIN_GEMM_DNNL], sizeof errors[0], "%s", myelin_dnnl_error());
        return 0;
    }
    void *lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    p_dnnl_sgemm = lib ? (__typeof__(dnnl_sgemm) *)dlsym(lib, "dnnl_sgemm") : NULL;
    if (p_dnnl_sgemm == NULL) {
        snprintf(errors[MYELIN_GEMM_DNNL], sizeof errors[0], "libdnnl.so.2 has no dnnl_sgemm");
        return 0;
    }
    return 1;
}

/// BLIS: its thread count set through its own call (BLIS_NUM_THREADS, when the user set it, wins: BLIS reads
/// it only where no count was set, so it is not overridden here).
static int load_blis(int threads) {
    void *lib = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        snprintf(errors[MYELIN_GEMM_BLIS], sizeof errors[0], "cannot load libblis.so.4 (apt-get install libblis4): %s",
                 dlerror());
        return 0;
    }
    p_blis_sgemm = (cblas_sgemm_f *)dlsym(lib, "cblas_sgemm");
    bli_thread_set_num_threads_f *setThreads = (bli_thread_set_num_threads_f *)dlsym(lib, "bli_thread_set_num_threads");
    if (p_blis_sgemm == NULL || setThreads == NULL) {
        snprintf(errors[MYELIN_GEMM_BLIS], sizeof errors[0], "libblis.so.4 has no cblas_sgemm or bli_thread_set_num_threads");
        return 0;
    }
    if (getenv("BLIS_NUM_THREADS") == NULL) setThreads(threads > 0 ? threads : 1);
    return 1;
}

int myelin_gemm_library_load(int library, int threads) {
    if (library != MYELIN_GEMM_DNNL && library != MYELIN_GEMM_BLIS) return 0;
    pthread_mutex_lock(&lock);
    if (loaded[library] < 0) loaded[library] = library == MYELIN_GEMM_DNNL ? load_dnnl(threads) : load_blis(threads);
    int result = loaded[library];
    pthread_mutex_unlock(&lock);
    return result;
}

const char *myelin_gemm_library_error(int library) {
    return library == MYELIN_GEMM_DNNL || library == MYELIN_GEMM_BLIS ? errors[library] : "no such library";
}

int myelin_gemm_library_sgemm(int library, int transA, int transB, long m, long n, long k, float alpha,
                              const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc) {
    if (library == MYELIN_GEMM_DNNL && p_dnnl_sgemm != NULL) {
        return p_dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            != dnnl_success;
    }
    if (library == MYELIN_GEMM_BLIS && p_blis_sgemm != NULL) {
        p_blis_sgemm(101, transA ? 112 : 111, transB ? 112 : 111, (int)m, (int)n, (int)k, alpha, a, (int)lda, b,
                     (int)ldb, beta, c, (int)ldc);
        return 0;
    }
    return 1;
}
