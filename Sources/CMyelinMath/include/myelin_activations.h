#ifndef MYELIN_ACTIVATIONS_H
#define MYELIN_ACTIVATIONS_H
// Activations whose libm form is the CPU's bottleneck, in a form the compiler vectorizes (no libm calls).
//
// myelin_gelu_erf: y[i] = 0.5·x·(1 + erf(x/√2)) for i in [lo, hi), BERT's exact GELU. erf is a rational
// approximation (odd degree-13 numerator over even degree-8 denominator, on x clamped to [-4, 4], beyond which
// erf is ±1 in float): |y − gelu(x)| ≤ 3e-7·max(|x|, 1) against gelu in Double (2.6e-7 measured on a dense grid
// over [-12, 12]; GeluKernelTests checks it), against 4.5e-7 absolute for the same formula with libm's erff.
// 8 lanes with AVX2 where the CPU has it (`myelin_sgemm_available()`), else the same expressions one by one.
void myelin_gelu_erf(const float *x, float *y, long lo, long hi);

// myelin_exp_shifted: row[c] = exp(row[c] − shift) for c in [0, n), and their sum (the softmax numerators of the
// fused attention on the CPU). exp by Cephes' range reduction (x = k·ln2 + r) and degree-6 polynomial, within 2 ulp
// of expf; arguments below −87.3 (−∞ included: masked keys) give 0, NaN gives NaN. Same AVX2 gating as myelin_gelu_erf.
float myelin_exp_shifted(float *row, long n, float shift);
#endif
