// Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are macros over addresses of global objects, which
// Swift cannot import: these inline functions return them.
#ifndef MYELIN_CMPI_SHIM_H
#define MYELIN_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm myelin_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype myelin_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype myelin_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Op myelin_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op myelin_mpi_min(void) { return MPI_MIN; }
static inline MPI_Op myelin_mpi_max(void) { return MPI_MAX; }
static inline void *myelin_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *myelin_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline int myelin_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int myelin_mpi_success(void) { return MPI_SUCCESS; }
static inline int myelin_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline MPI_Errhandler myelin_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
#endif
