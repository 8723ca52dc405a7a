#ifndef MYELIN_CLI_OPENBLAS_SHIM_H
#define MYELIN_CLI_OPENBLAS_SHIM_H
#include <cblas.h>
#endif
