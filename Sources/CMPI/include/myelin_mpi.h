// Open MPI, loaded at run time (dlopen) the first time distributed training asks for it, so that nothing that uses
// Myelin links libmpi or needs it installed. Every function returns an MPI error code (MPI_SUCCESS is 0), except
// myelin_mpi_load. MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) stay inside myelin_mpi.c.
#ifndef MYELIN_MPI_H
#define MYELIN_MPI_H
#include <stddef.h>

/// The largest message myelin_mpi_error_string writes (Open MPI's MPI_MAX_ERROR_STRING), with its final 0.
#define MYELIN_MPI_MAX_ERROR_STRING 256

/// The reductions of myelin_mpi_allreduce_double.
enum { MYELIN_MPI_OP_SUM = 0, MYELIN_MPI_OP_MIN = 1, MYELIN_MPI_OP_MAX = 2 };

/// Loads Open MPI (`library`, or the environment's MYELIN_MPI_LIBRARY, or libmpi.so.40 then libmpi.so) and finds
/// its functions and handles, once per process. Returns 0 when MPI is ready, else -1 with the reason (dlopen's or
/// dlsym's message) in `error` (`capacity` bytes, always terminated). Thread-safe.
int myelin_mpi_load(const char *library, char *error, size_t capacity);

int myelin_mpi_initialized(int *flag);
int myelin_mpi_finalized(int *flag);
/// MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, provided).
int myelin_mpi_init_thread_funneled(int *provided);
int myelin_mpi_finalize(void);
/// Makes errors on MPI_COMM_WORLD return codes instead of aborting (MPI_ERRORS_RETURN).
int myelin_mpi_world_errors_return(void);
int myelin_mpi_world_rank(int *rank);
int myelin_mpi_world_size(int *size);
int myelin_mpi_world_barrier(void);
/// MPI_Bcast of `count` floats from `root` over MPI_COMM_WORLD.
int myelin_mpi_world_bcast_float(float *values, int count, int root);
/// MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD).
int myelin_mpi_world_allreduce_float_sum(float *values, int count);
/// MPI_Allreduce in place on doubles with a MYELIN_MPI_OP_* reduction.
int myelin_mpi_world_allreduce_double(double *values, int count, int op);
/// MPI_Error_string: the message of `code` in `text` (MYELIN_MPI_MAX_ERROR_STRING bytes), its length in `length`.
int myelin_mpi_error_string(int code, char *text, int *length);
#endif
