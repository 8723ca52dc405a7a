#ifndef MYELIN_OPENBLAS_H
#define MYELIN_OPENBLAS_H
/// Makes OpenBLAS's idle worker threads sleep almost at once instead of spinning (with sched_yield) for about
/// 2^28 cycles after each threaded BLAS call, unless the user set OPENBLAS_THREAD_TIMEOUT. A spinning worker takes a
/// core from the CPU device's own threads, which run the elementwise, batch-norm and convolution loops between the
/// GEMMs (a quarter of a ResNet step went to scheduling). OpenBLAS reads the timeout once, when its threads
/// start, so this sets the variable for OpenBLAS to read again (then restores the environment) and stops the
/// threads; the next threaded call starts them with the short timeout. Uses `openblas_read_env` and
/// `blas_thread_shutdown_` looked up at run time: with another BLAS, or an OpenBLAS without them, it does
/// nothing. Returns 1 when the timeout was changed.
int myelin_openblas_short_spin(int exponent);
#endif
