// scripts/mpi-check compiles this against the installed <mpi.h> and runs it: Sources/CMPI/abi.h (what myelin_mpi.c
// assumes of Open MPI, loaded with dlopen) must agree with the header: constants, the handles' symbols, the functions'
// types. Built with -Werror, so a function type that differs stops the compile.
#include <mpi.h>
#define MYELIN_MPI_COMM MPI_Comm
#define MYELIN_MPI_DATATYPE MPI_Datatype
#define MYELIN_MPI_OP MPI_Op
#define MYELIN_MPI_ERRHANDLER MPI_Errhandler
#include "../Sources/CMPI/abi.h"
#include "../Sources/CMPI/include/myelin_mpi.h"
#include <dlfcn.h>
#include <stdio.h>

_Static_assert(MYELIN_MPI_SUCCESS == MPI_SUCCESS, "MPI_SUCCESS");
_Static_assert(MYELIN_MPI_THREAD_FUNNELED == MPI_THREAD_FUNNELED, "MPI_THREAD_FUNNELED");
_Static_assert(MYELIN_MPI_MAX_ERROR_STRING == MPI_MAX_ERROR_STRING, "MPI_MAX_ERROR_STRING");
_Static_assert(sizeof(MPI_Comm) == sizeof(myelin_mpi_handle) && sizeof(MPI_Datatype) == sizeof(myelin_mpi_handle)
               && sizeof(MPI_Op) == sizeof(myelin_mpi_handle) && sizeof(MPI_Errhandler) == sizeof(myelin_mpi_handle),
               "MPI's handles are pointers");

// Each MPI function has the type abi.h gives it (with mpi.h's handle types in place of void *).
static myelin_mpi_Initialized_fn initialized = MPI_Initialized;
static myelin_mpi_Finalized_fn finalized = MPI_Finalized;
static myelin_mpi_Init_thread_fn init_thread = MPI_Init_thread;
static myelin_mpi_Finalize_fn finalize = MPI_Finalize;
static myelin_mpi_Comm_set_errhandler_fn set_errhandler = MPI_Comm_set_errhandler;
static myelin_mpi_Comm_rank_fn comm_rank = MPI_Comm_rank;
static myelin_mpi_Comm_size_fn comm_size = MPI_Comm_size;
static myelin_mpi_Barrier_fn barrier = MPI_Barrier;
static myelin_mpi_Bcast_fn bcast = MPI_Bcast;
static myelin_mpi_Allreduce_fn allreduce = MPI_Allreduce;
static myelin_mpi_Error_string_fn error_string = MPI_Error_string;

static int same(const char *what, const void *header, const char *symbol) {
    void *found = dlsym(RTLD_DEFAULT, symbol);
    if (found == header) return 1;
    fprintf(stderr, "mpi-abi-check: %s is %p in <mpi.h> but the symbol %s is %p\n", what, header, symbol, found);
    return 0;
}

int main(void) {
    int ok = MYELIN_MPI_IN_PLACE == MPI_IN_PLACE;
    if (!ok) fprintf(stderr, "mpi-abi-check: MPI_IN_PLACE differs\n");
    ok &= same("MPI_COMM_WORLD", (void *)MPI_COMM_WORLD, MYELIN_MPI_COMM_WORLD_SYMBOL);
    ok &= same("MPI_FLOAT", (void *)MPI_FLOAT, MYELIN_MPI_FLOAT_SYMBOL);
    ok &= same("MPI_DOUBLE", (void *)MPI_DOUBLE, MYELIN_MPI_DOUBLE_SYMBOL);
    ok &= same("MPI_SUM", (void *)MPI_SUM, MYELIN_MPI_SUM_SYMBOL);
    ok &= same("MPI_MIN", (void *)MPI_MIN, MYELIN_MPI_MIN_SYMBOL);
    ok &= same("MPI_MAX", (void *)MPI_MAX, MYELIN_MPI_MAX_SYMBOL);
    ok &= same("MPI_ERRORS_RETURN", (void *)MPI_ERRORS_RETURN, MYELIN_MPI_ERRORS_RETURN_SYMBOL);
    // The loader finds every function and handle in the library itself.
    char error[512];
    if (myelin_mpi_load(NULL, error, sizeof error) != 0) { fprintf(stderr, "mpi-abi-check: %s\n", error); ok = 0; }
    (void)initialized; (void)finalized; (void)init_thread; (void)finalize; (void)set_errhandler; (void)comm_rank;
    (void)comm_size; (void)barrier; (void)bcast; (void)allreduce; (void)error_string;
    if (!ok) return 1;
    printf("mpi-abi-check: Sources/CMPI/abi.h agrees with <mpi.h> (MPI %d.%d)\n", MPI_VERSION, MPI_SUBVERSION);
    return 0;
}
