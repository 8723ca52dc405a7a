#ifndef MYELIN_ACTIVATIONS_H
#define MYELIN_ACTIVATIONS_H
// The exact (erf) GELU and its derivative over elements [lo, hi) as 8-wide AVX2+FMA vectors, for CPUs with AVX2
// (`myelin_sgemm_available()`): as libm's erff and expf, one element at a time, the CPU device's GELU took a fifth
// of a GPT training step. ½ · (1 + erf(x / √2)) is computed as ½ · erfc(−x / √2) with Numerical Recipes' erfcc
// (fractional error below 1.2e-7, so the lower tail keeps its relative accuracy); exp is Cephes' expf polynomial
// with the exponent set by bits (about 1 ulp). The last elements (fewer than 8) go through the same vector
// formulas, zero-padded, so every element gets the same result wherever a chunk starts or ends.

/// y[i] = x[i] · ½ · (1 + erf(x[i] / √2)) for i in [lo, hi); y may be x.
void myelin_gelu_erf(const float *x, float *y, long lo, long hi);

/// gx[i] = gy[i] · (½ · (1 + erf(x[i] / √2)) + x[i] · exp(−x[i]² / 2) / √(2π)) for i in [lo, hi).
void myelin_gelu_erf_backward(const float *x, const float *gy, float *gx, long lo, long hi);
#endif
