// Open MPI through dlopen: see include/myelin_mpi.h, and abi.h for the interface assumed.
#include "myelin_mpi.h"
#include "abi.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    myelin_mpi_Initialized_fn Initialized;
    myelin_mpi_Finalized_fn Finalized;
    myelin_mpi_Init_thread_fn Init_thread;
    myelin_mpi_Finalize_fn Finalize;
    myelin_mpi_Comm_set_errhandler_fn Comm_set_errhandler;
    myelin_mpi_Comm_rank_fn Comm_rank;
    myelin_mpi_Comm_size_fn Comm_size;
    myelin_mpi_Barrier_fn Barrier;
    myelin_mpi_Bcast_fn Bcast;
    myelin_mpi_Allreduce_fn Allreduce;
    myelin_mpi_Error_string_fn Error_string;
    myelin_mpi_handle world, float_type, double_type, sum, min, max, errors_return;
} mpi;
static int loaded = 0;
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static void *find(void *library, const char *name, char *error, size_t capacity, int *failed) {
    void *symbol = dlsym(library, name);
    if (!symbol && !*failed) {
        snprintf(error, capacity, "the MPI library has no symbol %s (Myelin needs Open MPI 3.0 or later)", name);
        *failed = 1;
    }
    return symbol;
}

int myelin_mpi_load(const char *library, char *error, size_t capacity) {
    pthread_mutex_lock(&load_lock);
    if (loaded) { pthread_mutex_unlock(&load_lock); return 0; }
    if (!library || !*library) library = getenv("MYELIN_MPI_LIBRARY");
    // RTLD_GLOBAL: Open MPI's own plugins (mca components) find libmpi's symbols in the global scope.
    void *handle = dlopen(library && *library ? library : "libmpi.so.40", RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
        // The reason for the first name (the one a user installs), before libmpi.so (Debian's -dev link) is tried.
        const char *why = dlerror();
        snprintf(error, capacity, "%s", why ? why : "dlopen failed");
        if (!(library && *library)) handle = dlopen("libmpi.so", RTLD_NOW | RTLD_GLOBAL);
        if (!handle) { pthread_mutex_unlock(&load_lock); return -1; }
    }
    int failed = 0;
    // Functions through a void * (POSIX's idiom for dlsym), handles as the addresses of Open MPI's globals.
#define FUNCTION(name) *(void **)&mpi.name = find(handle, "MPI_" #name, error, capacity, &failed)
#define HANDLE(field, symbol) mpi.field = find(handle, symbol, error, capacity, &failed)
    FUNCTION(Initialized);
    FUNCTION(Finalized);
    FUNCTION(Init_thread);
    FUNCTION(Finalize);
    FUNCTION(Comm_set_errhandler);
    FUNCTION(Comm_rank);
    FUNCTION(Comm_size);
    FUNCTION(Barrier);
    FUNCTION(Bcast);
    FUNCTION(Allreduce);
    FUNCTION(Error_string);
    HANDLE(world, MYELIN_MPI_COMM_WORLD_SYMBOL);
    HANDLE(float_type, MYELIN_MPI_FLOAT_SYMBOL);
    HANDLE(double_type, MYELIN_MPI_DOUBLE_SYMBOL);
    HANDLE(sum, MYELIN_MPI_SUM_SYMBOL);
    HANDLE(min, MYELIN_MPI_MIN_SYMBOL);
    HANDLE(max, MYELIN_MPI_MAX_SYMBOL);
    HANDLE(errors_return, MYELIN_MPI_ERRORS_RETURN_SYMBOL);
#undef FUNCTION
#undef HANDLE
    if (failed) dlclose(handle);
    loaded = !failed;
    pthread_mutex_unlock(&load_lock);
    return failed ? -1 : 0;
}

// Not loaded: the calls below are reached only after myelin_mpi_load succeeded (MPIRuntime.start in Swift).
int myelin_mpi_initialized(int *flag) { return mpi.Initialized(flag); }
int myelin_mpi_finalized(int *flag) { return mpi.Finalized(flag); }
int myelin_mpi_init_thread_funneled(int *provided) { return mpi.Init_thread(NULL, NULL, MYELIN_MPI_THREAD_FUNNELED, provided); }
int myelin_mpi_finalize(void) { return mpi.Finalize(); }
int myelin_mpi_world_errors_return(void) { return mpi.Comm_set_errhandler(mpi.world, mpi.errors_return); }
int myelin_mpi_world_rank(int *rank) { return mpi.Comm_rank(mpi.world, rank); }
int myelin_mpi_world_size(int *size) { return mpi.Comm_size(mpi.world, size); }
int myelin_mpi_world_barrier(void) { return mpi.Barrier(mpi.world); }
int myelin_mpi_world_bcast_float(float *values, int count, int root) {
    return mpi.Bcast(values, count, mpi.float_type, root, mpi.world);
}
int myelin_mpi_world_allreduce_float_sum(float *values, int count) {
    return mpi.Allreduce(MYELIN_MPI_IN_PLACE, values, count, mpi.float_type, mpi.sum, mpi.world);
}
int myelin_mpi_world_allreduce_double(double *values, int count, int op) {
    myelin_mpi_handle o = op == MYELIN_MPI_OP_MIN ? mpi.min : op == MYELIN_MPI_OP_MAX ? mpi.max : mpi.sum;
    return mpi.Allreduce(MYELIN_MPI_IN_PLACE, values, count, mpi.double_type, o, mpi.world);
}
int myelin_mpi_error_string(int code, char *text, int *length) { return mpi.Error_string(code, text, length); }
