#ifndef MYELIN_MATH_H
#define MYELIN_MATH_H
// Vector math the CPU backend needs and Swift does not give in vector form on Linux: `SIMD8<Float>.squareRoot()`
// calls libm's sqrtf once per lane, while this compiles to sqrtps/vsqrtps inline (IEEE square root, so the
// results are bit-identical). An 8-lane float vector here is `SIMD8<Float>` in Swift.
typedef float myelin_float8 __attribute__((ext_vector_type(8)));

/// The square root of each lane.
static inline __attribute__((always_inline)) myelin_float8 myelin_sqrt8(myelin_float8 x) {
    return __builtin_elementwise_sqrt(x);
}
#include "myelin_gemm.h"
#include "myelin_optimizers.h"
#include "myelin_openblas.h"
#include "myelin_activations.h"
#endif
