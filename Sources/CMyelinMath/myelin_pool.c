// See include/myelin_pool.h.
#define _GNU_SOURCE
#include "myelin_pool.h"
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
int myelin_pool_run(int parts, myelin_pool_body body, void *context) { return 0; }
#else

enum { MAX_WORKERS = 63 };
/// How long a worker spins for the next job before it sleeps (back-to-back jobs, as the products and loops of a
/// training step, then start without a wake-up, which cost 20-60 µs on a 2-core VM).
static const long spinNanoseconds = 100000;

/// The job being run: written by the caller before it bumps `generation`, read by the workers after.
static struct {
    myelin_pool_body body;
    void *context;
} job;
static atomic_flag busy = ATOMIC_FLAG_INIT;      // one job at a time; other callers split their work themselves
static _Atomic unsigned generation;                // bumped once per job
static _Atomic unsigned long ticket;               // the job's part count << 32 | the next part to hand out
static atomic_long finished;                       // parts done
static atomic_int sleepers;                        // workers in futex_wait (the caller wakes them only then)
static int workers;                                // started workers (only grows, under `busy`)

static long nowNanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/// Claims and runs parts of the current job until none is left. Parts are claimed, not assigned: a worker the
/// system has not scheduled yet leaves its part to the caller (or another worker) instead of holding it up. A
/// claim is a compare-and-swap of `ticket`, which the caller sets only after writing `job` and only once the last
/// job's parts are all finished, so a claim always takes an unclaimed part of the current job, even a
/// worker's that comes late; workers beyond the part count find nothing to claim.
static void runParts(void) {
    unsigned long t = atomic_load(&ticket);
    for (;;) {
        unsigned long parts = t >> 32, next = t & 0xffffffffUL;
        if (next >= parts) return;
        if (!atomic_compare_exchange_weak(&ticket, &t, t + 1)) continue;
        job.body(job.context, (long)next, (long)parts);
        atomic_fetch_add(&finished, 1);
        t = atomic_load(&ticket);
    }
}

/// A worker's loop; `arg` is the generation when it was started (it is started under `busy`, before the caller
/// bumps the generation for its first job).
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

int myelin_pool_run(int parts, myelin_pool_body body, void *context) {
    if (parts < 2 || parts - 1 > MAX_WORKERS) return 0;
    if (atomic_flag_test_and_set(&busy)) return 0;
    // The pool grows to the largest part count asked for, less the caller.
    while (workers < parts - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&t, &attr, workerMain, (void *)(unsigned long)atomic_load(&generation));
        pthread_attr_destroy(&attr);
        if (failed) break;
        workers++;
    }
    if (workers < parts - 1) {
        atomic_flag_clear(&busy);
        return 0;
    }
    job.body = body;
    job.context = context;
    atomic_store(&finished, 0);
    atomic_store(&ticket, (unsigned long)parts << 32);
    atomic_fetch_add(&generation, 1);
    if (atomic_load(&sleepers) > 0)
        syscall(SYS_futex, (unsigned *)&generation, FUTEX_WAKE_PRIVATE, workers, NULL, NULL, 0);
    runParts();
    for (int spins = 0; atomic_load(&finished) < parts; spins++) {
        _mm_pause();
        if ((spins & 63) == 63) sched_yield();
    }
    atomic_flag_clear(&busy);
    return 1;
}
#endif
