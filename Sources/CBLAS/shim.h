#ifndef MYELIN_CBLAS_SHIM_H
#define MYELIN_CBLAS_SHIM_H
#include <cblas.h>
#endif
