// See include/myelin_gemm.h.
#include "myelin_gemm.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

// Sums in source order, no fused multiply-adds where the source has a multiply then an add (the tiny
// path's rounding then matches a plain loop's; the kernel's FMAs are explicit intrinsics).
#pragma clang fp contract(off)

enum { MR = 6, NR = 16, KC = 256, MC = 144 };

#if !defined(__x86_64__)
// Other architectures: the CPU device uses BLAS (and its Swift loops) only.
int myelin_sgemm_available(void) { return 0; }
void myelin_sgemm_block(int transA, int transB, long k, float alpha, const float *a, long lda, const float *b, long ldb,
                        float beta, float *c, long ldc, const float *bias, int relu,
                        long row0, long row1, long col0, long col1) {
    abort();
}
#else
int myelin_sgemm_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/// A per-thread buffer of at least `count` floats, 64-byte aligned, grown as needed and kept.
static float *scratch(float **buffer, size_t *capacity, size_t count) {
    if (*capacity < count) {
        free(*buffer);
        size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
        *buffer = aligned_alloc(64, bytes);
        if (*buffer == NULL) abort();
        *capacity = bytes / sizeof(float);
    }
    return *buffer;
}
static _Thread_local float *packedA, *packedB;
static _Thread_local size_t packedACapacity, packedBCapacity;

/// Transposes the 8×8 block in r (r[i] = row i) in place (r[j] = column j).
__attribute__((target("avx2,fma")))
static inline void transpose8x8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20); r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20); r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31); r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31); r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/// op(A)[r, p] for the rows [r0, r0 + mc) and depths [p0, p0 + kc), as panels of MR rows: panel i holds
/// kc groups of MR values (rows past the end are zero).
__attribute__((target("avx2,fma")))
static void packA(int transA, const float *a, long lda, long r0, long mc, long p0, long kc, float *out) {
    for (long i = 0; i < mc; i += MR) {
        long rows = mc - i < MR ? mc - i : MR;
        float *panel = out + i * kc;
        if (!transA) {
            long p = 0;
            if (rows == MR) {
                // Eight depths at a time: an 8×8 transpose of six rows (and two zero rows), stored as eight
                // groups of six; each 8-wide store's last two lanes are overwritten by the next (the
                // buffer has room past its end for the last).
                for (; p + 8 <= kc; p += 8) {
                    __m256 r[8];
                    for (long q = 0; q < MR; q++) r[q] = _mm256_loadu_ps(a + (r0 + i + q) * lda + p0 + p);
                    r[6] = r[7] = _mm256_setzero_ps();
                    transpose8x8(r);
                    for (long t = 0; t < 8; t++) _mm256_storeu_ps(panel + (p + t) * MR, r[t]);
                }
            }
            for (; p < kc; p++) {
                for (long r = 0; r < rows; r++) panel[p * MR + r] = a[(r0 + i + r) * lda + p0 + p];
                for (long r = rows; r < MR; r++) panel[p * MR + r] = 0;
            }
        } else {
            for (long p = 0; p < kc; p++) {
                const float *src = a + (p0 + p) * lda + r0 + i;
                for (long r = 0; r < rows; r++) panel[p * MR + r] = src[r];
                for (long r = rows; r < MR; r++) panel[p * MR + r] = 0;
            }
        }
    }
}

/// op(B)[p, j] for depths [p0, p0 + kc) and columns [c0, c0 + nc), as panels of NR columns: panel j holds
/// kc rows of NR values (columns past the end are zero).
__attribute__((target("avx2,fma")))
static void packB(int transB, const float *b, long ldb, long p0, long kc, long c0, long nc, float *out) {
    for (long j = 0; j < nc; j += NR) {
        long cols = nc - j < NR ? nc - j : NR;
        float *panel = out + j * kc;
        if (!transB) {
            for (long p = 0; p < kc; p++) {
                const float *src = b + (p0 + p) * ldb + c0 + j;
                if (cols == NR) memcpy(panel + p * NR, src, NR * sizeof(float));
                else {
                    for (long q = 0; q < cols; q++) panel[p * NR + q] = src[q];
                    for (long q = cols; q < NR; q++) panel[p * NR + q] = 0;
                }
            }
        } else {
            long p = 0;
            if (cols == NR) {
                // Eight depths of eight columns at a time through an 8×8 transpose.
                for (; p + 8 <= kc; p += 8) {
                    for (long half = 0; half < NR; half += 8) {
                        __m256 r[8];
                        for (long q = 0; q < 8; q++) r[q] = _mm256_loadu_ps(b + (c0 + j + half + q) * ldb + p0 + p);
                        transpose8x8(r);
                        for (long t = 0; t < 8; t++) _mm256_store_ps(panel + (p + t) * NR + half, r[t]);
                    }
                }
            }
            for (long q = 0; q < NR; q++) {
                if (q < cols) {
                    const float *src = b + (c0 + j + q) * ldb + p0;
                    for (long pp = p; pp < kc; pp++) panel[pp * NR + q] = src[pp];
                } else {
                    for (long pp = p; pp < kc; pp++) panel[pp * NR + q] = 0;
                }
            }
        }
    }
}

/// The MR×NR product of one A panel and one B panel over kc, then stored into C (rows × cols of it):
/// first block: alpha·acc + beta·C (C not read when beta = 0); later blocks: C + alpha·acc; the last
/// block then adds the bias and applies ReLU.
__attribute__((target("avx2,fma")))
static void kernel6x16(long kc, const float *ap, const float *bp, float *c, long ldc, long rows, long cols,
                       float alpha, float beta, int first, int last, const float *bias, int relu) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
           c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
           c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
           c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma clang loop unroll_count(4)
    for (long p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
        __m256 a;
        a = _mm256_broadcast_ss(ap + 0); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(ap + 1); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(ap + 2); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(ap + 3); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(ap + 4); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(ap + 5); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
        ap += MR;
        bp += NR;
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta), zero = _mm256_setzero_ps();
    __m256 vbias0 = zero, vbias1 = zero;
    int full = cols == NR;
    if (last && bias) {
        if (full) { vbias0 = _mm256_loadu_ps(bias); vbias1 = _mm256_loadu_ps(bias + 8); }
        else {
            float tmp[NR] = {0};
            for (long q = 0; q < cols; q++) tmp[q] = bias[q];
            vbias0 = _mm256_loadu_ps(tmp); vbias1 = _mm256_loadu_ps(tmp + 8);
        }
    }
    for (long r = 0; r < rows; r++) {
        float *row = c + r * ldc;
        float tmp[NR];
        float *dst = full ? row : tmp;
        if (!full) {
            for (long q = 0; q < cols; q++) tmp[q] = row[q];
            for (long q = cols; q < NR; q++) tmp[q] = 0;
        }
        __m256 x0 = _mm256_mul_ps(va, acc[r][0]), x1 = _mm256_mul_ps(va, acc[r][1]);
        if (!first) {
            x0 = _mm256_add_ps(_mm256_loadu_ps(dst), x0);
            x1 = _mm256_add_ps(_mm256_loadu_ps(dst + 8), x1);
        } else if (beta != 0) {
            x0 = _mm256_add_ps(x0, _mm256_mul_ps(vb, _mm256_loadu_ps(dst)));
            x1 = _mm256_add_ps(x1, _mm256_mul_ps(vb, _mm256_loadu_ps(dst + 8)));
        }
        if (last) {
            if (bias) { x0 = _mm256_add_ps(x0, vbias0); x1 = _mm256_add_ps(x1, vbias1); }
            // max(x, 0) gives 0 for NaN, like `x > 0 ? x : 0`.
            if (relu) { x0 = _mm256_max_ps(x0, zero); x1 = _mm256_max_ps(x1, zero); }
        }
        _mm256_storeu_ps(dst, x0);
        _mm256_storeu_ps(dst + 8, x1);
        if (!full) for (long q = 0; q < cols; q++) row[q] = tmp[q];
    }
}

/// Tiny products (a few dozen multiply-adds, e.g. the XOR lab's): a dot product per element of C, no packing.
static void sgemmTiny(int transA, int transB, long k, float alpha, const float *a, long lda, const float *b, long ldb,
                      float beta, float *c, long ldc, const float *bias, int relu,
                      long row0, long row1, long col0, long col1) {
    long aRow = transA ? 1 : lda, aDepth = transA ? lda : 1;
    long bDepth = transB ? 1 : ldb, bCol = transB ? ldb : 1;
    for (long i = row0; i < row1; i++) {
        for (long j = col0; j < col1; j++) {
            const float *x = a + i * aRow, *y = b + j * bCol;
            float sum = 0;
            for (long p = 0; p < k; p++) sum += x[p * aDepth] * y[p * bDepth];
            float v = alpha * sum;
            if (beta != 0) v += beta * c[i * ldc + j];
            if (bias) v += bias[j];
            if (relu) v = v > 0 ? v : 0;
            c[i * ldc + j] = v;
        }
    }
}

void myelin_sgemm_block(int transA, int transB, long k, float alpha,
                        const float *a, long lda, const float *b, long ldb,
                        float beta, float *c, long ldc, const float *bias, int relu,
                        long row0, long row1, long col0, long col1) {
    long m = row1 - row0, n = col1 - col0;
    if (m <= 0 || n <= 0 || k <= 0) return;
    if (m * n * k <= 512) {
        sgemmTiny(transA, transB, k, alpha, a, lda, b, ldb, beta, c, ldc, bias, relu, row0, row1, col0, col1);
        return;
    }
    long nPanels = (n + NR - 1) / NR;
    // K in equal blocks of at most KC (784 = 4 × 196, not 3 × 256 + 16: a thin last block is slow).
    long kBlocks = (k + KC - 1) / KC, kcMax = (k + kBlocks - 1) / kBlocks;
    long mcMax = m < MC ? m : MC;
    float *bp = scratch(&packedB, &packedBCapacity, (size_t)(nPanels * NR * kcMax));
    float *ap = scratch(&packedA, &packedACapacity, (size_t)(((mcMax + MR - 1) / MR) * MR * kcMax + 8));
    for (long p0 = 0; p0 < k; p0 += kcMax) {
        long kc = k - p0 < kcMax ? k - p0 : kcMax;
        int first = p0 == 0, last = p0 + kc >= k;
        packB(transB, b, ldb, p0, kc, col0, n, bp);
        for (long i0 = 0; i0 < m; i0 += MC) {
            long mc = m - i0 < MC ? m - i0 : MC;
            packA(transA, a, lda, row0 + i0, mc, p0, kc, ap);
            for (long j = 0; j < n; j += NR) {
                long cols = n - j < NR ? n - j : NR;
                const float *bpanel = bp + j * kc;
                const float *biasHere = bias ? bias + col0 + j : NULL;
                for (long i = 0; i < mc; i += MR) {
                    long rows = mc - i < MR ? mc - i : MR;
                    kernel6x16(kc, ap + i * kc, bpanel, c + (row0 + i0 + i) * ldc + col0 + j, ldc, rows, cols,
                               alpha, beta, first, last, biasHere, relu);
                }
            }
        }
    }
}
#endif
