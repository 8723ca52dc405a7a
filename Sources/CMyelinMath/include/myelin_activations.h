#ifndef MYELIN_ACTIVATIONS_H
#define MYELIN_ACTIVATIONS_H
// Activations whose libm form, one element at a time, was the CPU's bottleneck (a fifth of a GPT training step,
// BERT's largest cost after the GEMMs), as 8-wide AVX2+FMA vectors where the CPU has AVX2
// (`myelin_sgemm_available()`), else libm one element at a time. GELU takes 16-wide vectors where the CPU also has
// AVX-512 (2.4× the AVX2 loop on a Zen 4 EPYC, with the same bits).
//
// The exact (erf) GELU: ½ · (1 + erf(x / √2)) is computed as ½ · erfc(−x / √2) with Numerical Recipes' erfcc
// (fractional error below 1.2e-7, so the lower tail keeps its relative accuracy); exp is Cephes' expf polynomial
// with the exponent set by bits (about 1 ulp). The last elements (fewer than a vector) go through the same vector
// formulas, zero-padded, so every element gets the same result wherever a chunk starts or ends.

/// y[i] = x[i] · ½ · (1 + erf(x[i] / √2)) for i in [lo, hi); y may be x.
void myelin_gelu_erf(const float *x, float *y, long lo, long hi);

/// gx[i] = gy[i] · (½ · (1 + erf(x[i] / √2)) + x[i] · exp(−x[i]² / 2) / √(2π)) for i in [lo, hi), where y is the
/// forward's output (myelin_gelu_erf of x): the vector path reads ½ · (1 + erf(x / √2)) back as y / x (½ at x = 0)
/// instead of computing erfc again; the scalar path ignores y.
void myelin_gelu_erf_backward(const float *x, const float *y, const float *gy, float *gx, long lo, long hi);

// myelin_exp_shifted: row[c] = exp(row[c] − shift) for c in [0, n), and their sum (the softmax numerators of the
// fused attention on the CPU). exp by Cephes' range reduction (x = k·ln2 + r) and degree-6 polynomial, within 2 ulp
// of expf; arguments below −87.3 (−∞ included: masked keys) give 0, NaN gives NaN. Same AVX2 gating as above.
float myelin_exp_shifted(float *row, long n, float shift);
#endif
