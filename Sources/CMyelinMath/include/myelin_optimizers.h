#ifndef MYELIN_OPTIMIZERS_H
#define MYELIN_OPTIMIZERS_H
// Adam's update (without AMSGrad) over elements [lo, hi) as 8-wide AVX vectors, for CPUs with AVX2
// (`myelin_sgemm_available()`); the same expressions, in the same order and without fused multiply-adds, as
// the Swift loop in CPUBackend+Optimizers.swift, so the results are bit-identical to it. `first` reads the
// old moments as zero.
void myelin_adam_avx(float *p, const float *g, float *m, float *v, long lo, long hi,
                     float l2, float b1, float c1, float b2, float c2, float decay, float stepSize,
                     float bc2, float eps, int first);

// Whether any of p[0..<n] is NaN or infinite (`fit`'s per-batch scan of the parameters): 1 or 0. A branch-free
// maximum over the magnitudes' bit patterns, vectorized (AVX2 where the CPU has it); n may be 0.
int myelin_any_nonfinite(const float *p, long n);
#endif
