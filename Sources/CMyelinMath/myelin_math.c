// The vector square root is inline in include/myelin_math.h; the SGEMM kernel is in myelin_gemm.c.
#include "myelin_math.h"
