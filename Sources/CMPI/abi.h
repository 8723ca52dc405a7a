// Open MPI's application binary interface as myelin_mpi.c uses it, without <mpi.h>: the handles are addresses of
// global objects named below (mpi.h's OMPI_PREDEFINED_GLOBAL), so every handle type is a pointer. The same since
// Open MPI 3.0 (soname libmpi.so.40). scripts/mpi-abi-check.c compiles these against the installed <mpi.h>.
#ifndef MYELIN_MPI_ABI_H
#define MYELIN_MPI_ABI_H

typedef void *myelin_mpi_handle;

// The handle types in the function types below; scripts/mpi-abi-check.c defines them as mpi.h's types to compare.
#ifndef MYELIN_MPI_COMM
#define MYELIN_MPI_COMM myelin_mpi_handle
#define MYELIN_MPI_DATATYPE myelin_mpi_handle
#define MYELIN_MPI_OP myelin_mpi_handle
#define MYELIN_MPI_ERRHANDLER myelin_mpi_handle
#endif

#define MYELIN_MPI_SUCCESS 0
#define MYELIN_MPI_THREAD_FUNNELED 1
#define MYELIN_MPI_IN_PLACE ((void *)1)

#define MYELIN_MPI_COMM_WORLD_SYMBOL "ompi_mpi_comm_world"
#define MYELIN_MPI_FLOAT_SYMBOL "ompi_mpi_float"
#define MYELIN_MPI_DOUBLE_SYMBOL "ompi_mpi_double"
#define MYELIN_MPI_SUM_SYMBOL "ompi_mpi_op_sum"
#define MYELIN_MPI_MIN_SYMBOL "ompi_mpi_op_min"
#define MYELIN_MPI_MAX_SYMBOL "ompi_mpi_op_max"
#define MYELIN_MPI_ERRORS_RETURN_SYMBOL "ompi_mpi_errors_return"

// The MPI functions used, as pointer types (MPI_X has the type myelin_mpi_X_fn).
typedef int (*myelin_mpi_Initialized_fn)(int *);
typedef int (*myelin_mpi_Finalized_fn)(int *);
typedef int (*myelin_mpi_Init_thread_fn)(int *, char ***, int, int *);
typedef int (*myelin_mpi_Finalize_fn)(void);
typedef int (*myelin_mpi_Comm_set_errhandler_fn)(MYELIN_MPI_COMM, MYELIN_MPI_ERRHANDLER);
typedef int (*myelin_mpi_Comm_rank_fn)(MYELIN_MPI_COMM, int *);
typedef int (*myelin_mpi_Comm_size_fn)(MYELIN_MPI_COMM, int *);
typedef int (*myelin_mpi_Barrier_fn)(MYELIN_MPI_COMM);
typedef int (*myelin_mpi_Bcast_fn)(void *, int, MYELIN_MPI_DATATYPE, int, MYELIN_MPI_COMM);
typedef int (*myelin_mpi_Allreduce_fn)(const void *, void *, int, MYELIN_MPI_DATATYPE, MYELIN_MPI_OP, MYELIN_MPI_COMM);
typedef int (*myelin_mpi_Error_string_fn)(int, char *, int *);
#endif
