#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include "myelin_openblas.h"

int myelin_openblas_short_spin(int exponent) {
    if (getenv("OPENBLAS_THREAD_TIMEOUT") != NULL) return 0;   // the user's choice stays
    void (*read_env)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "openblas_read_env");
    int (*shutdown)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "blas_thread_shutdown_");
    if (read_env == NULL || shutdown == NULL) return 0;
    char value[16];
    snprintf(value, sizeof value, "%d", exponent);
    if (setenv("OPENBLAS_THREAD_TIMEOUT", value, 1) != 0) return 0;
    read_env();
    unsetenv("OPENBLAS_THREAD_TIMEOUT");   // children and later readers see the environment as it was
    shutdown();
    return 1;
}
