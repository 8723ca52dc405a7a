// See include/myelin_gemm.h (myelin_sgemm_parallel).
#define _GNU_SOURCE
#include "myelin_gemm.h"
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if !defined(__linux__) || !defined(__x86_64__)
int myelin_sgemm_parallel(int threads, int transA, int transB, long m, long n, long k, float alpha, const float *a,
                          long lda, const float *b, long ldb, float beta, float *c, long ldc, const float *bias,
                          int relu) {
    return 0;
}
#else

enum { MR = 6, NR = 16, MAX_WORKERS = 63 };
/// How long a worker spins for the next product before it sleeps (back-to-back products, as in a training
/// step's backward pass, then start without a wake-up, which cost 20-60 µs on a 2-core VM).
static const long spinNanoseconds = 100000;

/// The product being run: written by the caller before it bumps `generation`, read by the workers after.
static struct {
    int transA, transB, relu, byColumns;
    long m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b, *bias;
    float *c;
} job;
static atomic_flag busy = ATOMIC_FLAG_INIT;      // one product at a time; others use the caller's own threads
static _Atomic unsigned generation;                // bumped once per product
static _Atomic unsigned long ticket;               // the product's part count << 32 | the next part to hand out
static atomic_long finished;                       // parts done
static atomic_int sleepers;                        // workers in futex_wait (the caller wakes them only then)
static int workers;                                // started workers (only grows, under `busy`)

static long nowNanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/// Runs part `index` of `parts` of the job: a range of whole 16-column (or 6-row) panels.
static void runPart(long index, long parts) {
    long panels = job.byColumns ? (job.n + NR - 1) / NR : (job.m + MR - 1) / MR;
    long lo = panels * index / parts, hi = panels * (index + 1) / parts;
    if (lo >= hi) return;
    long r0 = 0, r1 = job.m, c0 = 0, c1 = job.n;
    if (job.byColumns) { c0 = lo * NR; c1 = hi * NR < job.n ? hi * NR : job.n; }
    else { r0 = lo * MR; r1 = hi * MR < job.m ? hi * MR : job.m; }
    myelin_sgemm_block(job.transA, job.transB, job.k, job.alpha, job.a, job.lda, job.b, job.ldb, job.beta, job.c,
                       job.ldc, job.bias, job.relu, r0, r1, c0, c1);
}

/// Claims and runs parts of the current product until none is left. Parts are claimed, not assigned: a worker the
/// system has not scheduled yet leaves its part to the caller (or another worker) instead of holding it up. A
/// claim is a compare-and-swap of `ticket`, which the caller sets only after writing `job` and only once the last
/// product's parts are all finished, so a claim always takes an unclaimed part of the current product, even a
/// worker's that comes late; workers beyond the part count find nothing to claim.
static void runParts(void) {
    unsigned long t = atomic_load(&ticket);
    for (;;) {
        unsigned long parts = t >> 32, next = t & 0xffffffffUL;
        if (next >= parts) return;
        if (!atomic_compare_exchange_weak(&ticket, &t, t + 1)) continue;
        runPart((long)next, (long)parts);
        atomic_fetch_add(&finished, 1);
        t = atomic_load(&ticket);
    }
}

/// A worker's loop; `arg` is the generation when it was started (it is started under `busy`, before the caller
/// bumps the generation for its first product).
static void *workerMain(void *arg) {
    unsigned seen = (unsigned)(unsigned long)arg;
    for (;;) {
        long deadline = nowNanoseconds() + spinNanoseconds;
        unsigned g;
        for (int spins = 0; (g = atomic_load(&generation)) == seen; spins++) {
            _mm_pause();
            if ((spins & 63) != 63) continue;
            if (nowNanoseconds() < deadline) { sched_yield(); continue; }
            atomic_fetch_add(&sleepers, 1);
            while ((g = atomic_load(&generation)) == seen)
                syscall(SYS_futex, (unsigned *)&generation, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
            atomic_fetch_sub(&sleepers, 1);
            break;
        }
        seen = g;
        runParts();
    }
    return NULL;
}

int myelin_sgemm_parallel(int threads, int transA, int transB, long m, long n, long k, float alpha, const float *a,
                          long lda, const float *b, long ldb, float beta, float *c, long ldc, const float *bias,
                          int relu) {
    if (threads < 2 || threads - 1 > MAX_WORKERS || k <= 0 || m <= 0 || n <= 0) return 0;
    if (atomic_flag_test_and_set(&busy)) return 0;
    // The pool grows to the largest thread count asked for; a product has one part per thread it asks for.
    while (workers < threads - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&t, &attr, workerMain, (void *)(unsigned long)atomic_load(&generation));
        pthread_attr_destroy(&attr);
        if (failed) break;
        workers++;
    }
    if (workers < threads - 1) {
        atomic_flag_clear(&busy);
        return 0;
    }
    long columnPanels = (n + NR - 1) / NR, rowPanels = (m + MR - 1) / MR;
    job.transA = transA; job.transB = transB; job.relu = relu;
    job.byColumns = columnPanels >= threads || columnPanels >= rowPanels;
    job.m = m; job.n = n; job.k = k; job.lda = lda; job.ldb = ldb; job.ldc = ldc;
    job.alpha = alpha; job.beta = beta; job.a = a; job.b = b; job.bias = bias; job.c = c;
    atomic_store(&finished, 0);
    atomic_store(&ticket, (unsigned long)threads << 32);
    atomic_fetch_add(&generation, 1);
    if (atomic_load(&sleepers) > 0)
        syscall(SYS_futex, (unsigned *)&generation, FUTEX_WAKE_PRIVATE, workers, NULL, NULL, 0);
    runParts();
    for (int spins = 0; atomic_load(&finished) < threads; spins++) {
        _mm_pause();
        if ((spins & 63) == 63) sched_yield();
    }
    atomic_flag_clear(&busy);
    return 1;
}
#endif
